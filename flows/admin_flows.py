"""Admin for flows, nodes, edges and versions (see flows/admin.py)."""
