"""Where the probes live: plain constants, imported before Django is set up."""

HEALTH_PATH = "/health"
READY_PATH = "/ready"
PROBE_METHODS = ("GET", "HEAD")
# Quiet in the access logs on success (a trailing slash is the same probe to a person).
PROBE_PATHS = frozenset({HEALTH_PATH, READY_PATH, f"{HEALTH_PATH}/", f"{READY_PATH}/"})
# SECURE_REDIRECT_EXEMPT patterns: a plain-HTTP probe is answered, never redirected.
REDIRECT_EXEMPT = tuple(rf"^{path.lstrip('/')}$" for path in (HEALTH_PATH, READY_PATH))
