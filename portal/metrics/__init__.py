"""Prometheus metrics: ``/metrics`` for the web processes (docs/monitoring.md)."""
