"""Data-source connectivity: where workers may connect and how.

- `connectors/`: DB-API connections per engine (postgres, mysql, sqlite), time-limited and
  cancellable;
- `netpolicy`: the operator's outbound policy for data sources and http nodes;
- `crypto`: MultiFernet encryption of stored secrets;
- `services` (writes) and `selectors` (reads) of the `DataSource` model (in `flows.models`),
  `api/` (`/api/v1/datasources/`) and `admin`.

Nothing here is imported on package import, so `flows.models` can use `crypto` freely.
"""
