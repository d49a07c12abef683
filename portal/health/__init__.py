"""Probes and operator status: ``/health``, ``/ready``, ``/status``.

- ``paths``      the probe paths and methods (no Django imports: the logging config uses them)
- ``executor``   the single-flight thread pool the readiness checks run in, and the result cache
- ``checks``     django-health-check checks: database, storages, job heartbeats, outbox backlog
- ``views``      the views (django-health-check ``HealthCheckView`` subclasses)
- ``middleware`` ``ProbeMiddleware``: answers the probes before the rest of the stack
"""
