"""Prometheus metrics: ``/metrics`` for the web processes, figures read at scrape time.

Modules: ``multiproc`` (prometheus-client's multiprocess directory; loaded by gunicorn's
master, so this package imports nothing at import time), ``http`` (request counts and
durations), ``readiness`` (the last ``/ready`` answer as gauges), ``figures`` and
``collector`` (jobs, outbox, sessions and free space read at scrape time), ``access``
(who may scrape) and ``views``. See docs/monitoring.md.
"""
