"""Probe views (placeholder until the health issue): /health, /ready, /status."""
