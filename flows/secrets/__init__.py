"""Secrets: named values referenced as ``${secret.NAME}`` in any node configuration field.

- `references`: finding references in a configuration and reporting undefined ones (pure);
- `selectors` (reads: names only, never values) and `services` (writes, rotation);
- `runtime`: what only the worker does, resolving the values for one node and redacting
  them from everything the node reports;
- `api/` (`/api/v1/secrets/`), `admin` and `views` (the console page).

Values are encrypted with the data sources' MultiFernet keys (`flows.datasources.crypto`)
and leave the database only in the worker that executes a node referencing them.
"""
