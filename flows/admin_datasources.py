"""Admin for data sources (see flows/admin.py)."""
