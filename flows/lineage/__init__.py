"""Lineage: which tables each node of a published version reads and writes, which flows it
waits for, and the flows upstream and downstream of a flow through them.

`sql` parses SQL (sqlglot, in the data source engine's dialect); `services` records a
version's lineage when it is published; `selectors` answers the lineage queries.
"""
