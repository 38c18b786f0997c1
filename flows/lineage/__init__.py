"""Lineage: which tables each node of a published version reads and writes, which flows it
waits for, and the flows upstream and downstream of a flow through them.

- `sql`: which tables SQL reads and writes (sqlglot, in the data source engine's dialect);
- `services`: records a version's lineage when it is published (and rebuilds it);
- `selectors`: who reads and writes a table, the flows up- and downstream of a flow;
- `api/` (`/api/v1/lineage/`, `/api/v1/flows/{id}/lineage/`) and `views` (the console page).

The facts are `flows.models.LineageEntry` rows; each node type says what its configuration
reads and writes (`NodeType.lineage`).
"""
