"""Probes and operator status: ``/health``, ``/ready``, ``/status`` (deploy/probes.md)."""
