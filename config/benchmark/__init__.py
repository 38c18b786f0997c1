"""`manage.py benchmark`: how fast the platform is, measured on real workers, beat and database.

One package for every measurement, outside the product apps: engine.py (node dispatch and
throughput against a raw Celery chain), scheduling.py (lateness of a busy minute through
a real beat), api_scale.py (the flow API at 100,000 flows). Worker and beat processes are
started with processes.py, which the integration tests use too.
"""
