"""`manage.py benchmark`: how fast the platform is, measured on real workers, beat and database.

One package for every measurement, outside the product apps: engine.py (node dispatch and
throughput against a raw Celery chain, with and without hand-off to self), scheduling.py
(lateness of a busy minute through a real beat), api_scale.py (the flow API at 100,000
flows); targets.py holds every target the command checks. Worker and beat processes are
started with processes.py, which the integration tests use too.
"""


class BenchmarkError(Exception):
    """The benchmark could not measure: a worker did not start, a run did not finish, a
    request failed. The command reports it and exits non-zero."""
