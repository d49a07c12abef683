"""Where the probes live. Plain constants: ``boot.logging`` and ``boot.settings`` import them
before Django is set up, so this module imports nothing from Django or the portal.
"""

HEALTH_PATH = "/health"
READY_PATH = "/ready"
PROBE_METHODS = ("GET", "HEAD")
# What the access logs keep quiet on success (a trailing slash is the same probe to a person).
PROBE_PATHS = frozenset({HEALTH_PATH, READY_PATH, f"{HEALTH_PATH}/", f"{READY_PATH}/"})
# SECURE_REDIRECT_EXEMPT patterns: a plain-HTTP probe is answered, never redirected.
REDIRECT_EXEMPT = tuple(rf"^{path.lstrip('/')}$" for path in (HEALTH_PATH, READY_PATH))
