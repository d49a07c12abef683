"""Area catalog ``ops`` (issue #31), part 1: the probes (checks, views, executor, lanes).
Parts 2 and 3: ``mutant_area_ops_metrics.py`` (metrics, the status page) and
``mutant_area_ops_boot.py`` (drain, system checks, logging, settings, admin). Written
function by function from the code; each entry names the tests that kill it, its own pins
file (in-process, seconds) first. Same rules as ``tests/mutant_catalog.py``.

Measured (issue #31): 115 mutants over the three parts, all killed by their named tests.
Before the pins, the first 18 run (health checks and views) were killed 6 of 18. Left out
as equivalent, each with its reason where it stood: a database port 0, an upload finished
at the hour's end, a running run started at the same instant as the last finished one."""

from tests.mutant_catalog import Mutant

HEALTH = "tests/test_health.py"
DRAIN = "tests/test_drain.py"
METRICS = "tests/test_metrics.py"
ACCESS = "tests/test_metrics_access.py"
PAGE = "tests/test_status_page.py"
TREND = "tests/test_status_trend.py"
LOGGING = "tests/test_logging.py"
SETTINGS = "tests/test_settings.py"
ADMIN = "tests/test_admin.py"
PINS = "tests/test_pins_ops_boot.py"  # the pins of the system checks and settings values
LANES_ALL = tuple(
    f"tests/test_probe_lanes.py::{name}"
    for name in (
        "test_a_complete_probe_takes_its_lane",
        "test_anything_else_takes_the_usual_pool",
        "test_a_tus_body_takes_the_tus_lane",
        "test_anything_else_is_no_tus_body",
    )
)


def maker(pins):
    """``_m(name, path, old, new, *tests)``: one edit, ``pins`` run first."""

    def _m(name, path, old, new, *tests):
        named = (pins, *(t for t in tests if t != pins and t != PINS))
        return Mutant(f"ops: {name}", path, ((old, new),), named)

    return _m


_h = maker("tests/test_pins_ops.py")
_s = maker("tests/test_pins_ops_status.py")
_b = maker("tests/test_pins_ops_boot.py")
_l = maker("tests/test_pins_ops_logs.py")

CHECKS = "portal/health/checks.py"
VIEWS = "portal/health/views.py"
EXECUTOR = "portal/health/executor.py"
DRAIN_PY = "portal/health/drain.py"
LANES_PY = "portal/health/lanes.py"
HTTP = "portal/metrics/http.py"
MVIEWS = "portal/metrics/views.py"
COLLECTOR = "portal/metrics/collector.py"
FIGURES = "portal/metrics/figures.py"
PAGE_PY = "portal/services/status/page.py"
TREND_PY = "portal/services/status/trend.py"
SYSCHECKS = "portal/checks.py"
OBS = "portal/observability.py"
BLOG = "boot/logging.py"
CONFIG = "boot/config.py"
ADMIN_PY = "portal/admin.py"

MUTANTS = (
    # portal/health/checks.py
    _h(
        "the database check is named db",
        CHECKS,
        'return "database" if self.alias == "default"',
        'return "db" if self.alias == "default"',
        HEALTH,
    ),
    _h(
        "a full storage reads unavailable, not full",
        CHECKS,
        "            if _no_room(exc):\n",
        "            if False:\n",
        HEALTH,
    ),
    _h(
        "an exceeded disk quota is not a full storage",
        CHECKS,
        "NO_ROOM = (errno.ENOSPC, errno.EDQUOT)",
        "NO_ROOM = (errno.ENOSPC,)",
        HEALTH,
    ),
    _h(
        "a database error in a status check only warns",
        CHECKS,
        'raise ServiceUnavailable(f"{type(exc).__name__} from the database")',
        'raise ServiceWarning(f"{type(exc).__name__} from the database")',
        HEALTH,
        PAGE,
    ),
    _h(
        "a partial run is no success for job freshness",
        CHECKS,
        "job=self.job, outcome__in=[JobRun.Outcome.OK, JobRun.Outcome.PARTIAL]",
        "job=self.job, outcome__in=[JobRun.Outcome.OK]",
        HEALTH,
        PAGE,
    ),
    _h(
        "a job warns after three periods",
        CHECKS,
        "max_age = 2 * JOB_SCHEDULES[self.job].total_seconds()",
        "max_age = 3 * JOB_SCHEDULES[self.job].total_seconds()",
        HEALTH,
        PAGE,
    ),
    _h(
        "a job's age counts from its start, not its end",
        CHECKS,
        "at = (last.finished_at or last.started_at) if last else None",
        "at = last.started_at if last else None",
        HEALTH,
        PAGE,
    ),
    _h(
        "a job exactly twice its period old warns",
        CHECKS,
        "        if age > max_age:\n",
        "        if age >= max_age:\n",
        HEALTH,
        PAGE,
    ),
    _h(
        "failed outbox events do not warn",
        CHECKS,
        "        if failed:\n            raise ServiceWarning",
        "        if False:\n            raise ServiceWarning",
        HEALTH,
        PAGE,
    ),
    _h(
        "an old pending outbox event does not warn",
        CHECKS,
        "if age is not None and age > OUTBOX_BACKLOG_WARN_AGE.total_seconds():",
        "if age is not None and age > 2 * OUTBOX_BACKLOG_WARN_AGE.total_seconds():",
        HEALTH,
        PAGE,
    ),
    _h(
        "the disk warns below the minimum, not twice it",
        CHECKS,
        "if minimum and usage.free < 2 * minimum:",
        "if minimum and usage.free < minimum:",
        HEALTH,
        PAGE,
    ),
    _h(
        "the disk reports its warning level as the minimum",
        CHECKS,
        '"warn_below_bytes": 2 * minimum,',
        '"warn_below_bytes": minimum,',
        HEALTH,
        PAGE,
    ),
    _h(
        "a missing storage root only warns on /status",
        CHECKS,
        'raise ServiceUnavailable("the storage root is missing") from exc',
        'raise ServiceWarning("the storage root is missing") from exc',
        HEALTH,
        PAGE,
    ),
    _h(
        "/status measures only the temp volume",
        CHECKS,
        'volumes = ("portal_temp", "portal_final") if',
        'volumes = ("portal_temp",) if',
        HEALTH,
        PAGE,
    ),
    # portal/health/views.py
    _h(
        "/health answers a POST",
        VIEWS,
        "    if request.method not in PROBE_METHODS:\n        return HttpResponseNotAllowed",
        "    if False:\n        return HttpResponseNotAllowed",
        HEALTH,
    ),
    _h(
        "/health may be cached",
        VIEWS,
        '    response["Cache-Control"] = NEVER_CACHE\n    return response\n',
        "    return response\n",
        HEALTH,
    ),
    _h(
        "a full storage is a warning on /ready",
        VIEWS,
        '        return "full"\n',
        '        return "warning"\n',
        HEALTH,
    ),
    _h(
        "a warning fails /ready",
        VIEWS,
        'return any(state_of(result) == "unavailable" for result in results)',
        'return any(state_of(result) != "ok" for result in results)',
        HEALTH,
        PAGE,
    ),
    _h(
        "warnings are logged as failed readiness checks",
        VIEWS,
        "if result.error is None or isinstance(result.error, ServiceWarning):",
        "if result.error is None:",
        HEALTH,
        PAGE,
    ),
    _h(
        "a failed check logs the wrapper's type, not its cause",
        VIEWS,
        "cause = result.error.__cause__ or result.error",
        "cause = result.error",
        HEALTH,
    ),
    _h(
        "a failed check's duration is logged in seconds",
        VIEWS,
        "duration_ms=round(result.time_taken * 1000),",
        "duration_ms=round(result.time_taken),",
        HEALTH,
    ),
    _h(
        "/ready ignores the drain",
        VIEWS,
        "        if draining is not None:\n            return draining\n",
        "        if False:\n            return draining\n",
        DRAIN,
    ),
    _h(
        "/ready never reuses its answer",
        VIEWS,
        "        if cached is not None:\n            return cached\n",
        "        if False:\n            return cached\n",
        HEALTH,
    ),
    _h(
        "a full storage reads down in portal_ready_check_up",
        VIEWS,
        '.set(0 if state_of(result) == "unavailable" else 1)',
        '.set(0 if state_of(result) != "ok" else 1)',
        ACCESS,
    ),
    _h(
        "/status fails on a warning",
        VIEWS,
        "        failed = any_failed(ready)\n",
        "        failed = any_failed([*ready, *extra])\n",
        HEALTH,
        PAGE,
    ),
    _h(
        "/status reports every extra check ok",
        VIEWS,
        'entry = {"state": state_of(result), **result.check.figures}',
        'entry = {**result.check.figures, "state": "ok"}',
        HEALTH,
        PAGE,
    ),
    _h(
        "Accept: application/* is not JSON",
        VIEWS,
        'if item.mime_type in ("application/json", "application/*"):',
        'if item.mime_type in ("application/json",):',
        HEALTH,
        PAGE,
    ),
    _h(
        "a malformed Accept gets JSON",
        VIEWS,
        "    except ValueError:\n        return False\n    for item in media:",
        "    except ValueError:\n        return True\n    for item in media:",
        HEALTH,
        PAGE,
    ),
    _h(
        "any active user may see /status",
        VIEWS,
        "if user.is_active and user.is_staff:",
        "if user.is_active:",
        HEALTH,
        PAGE,
    ),
    _h(
        "a logged-in non-staff user is sent to log in",
        VIEWS,
        "    if user.is_authenticated:\n        return error_response(Forbidden",
        "    if False:\n        return error_response(Forbidden",
        HEALTH,
        PAGE,
    ),
    _h(
        "a JSON client without credentials is redirected to log in",
        VIEWS,
        "    if not wants_json(request):\n        return redirect_to_login",
        "    if wants_json(request):\n        return redirect_to_login",
        HEALTH,
        PAGE,
    ),
    _h(
        "/status without a database answers 500",
        VIEWS,
        "    except DatabaseError:\n        return error_response(",
        "    except ZeroDivisionError:\n        return error_response(",
        HEALTH,
        PAGE,
    ),
    _h(
        "probe answers carry no Content-Length",
        VIEWS,
        'if not response.streaming and not response.has_header("Content-Length"):',
        "if False:",
        HEALTH,
    ),
    # portal/health/executor.py
    _h(
        "a hung check is waited for by every probe",
        EXECUTOR,
        "            elif now - started > _budget_seconds(owner):\n",
        "            elif False:\n",
        HEALTH,
    ),
    _h(
        "a finished check is shared forever",
        EXECUTOR,
        "if shared is None or shared.done():",
        "if shared is None:",
        HEALTH,
    ),
    _h(
        "a cached answer is reused at exactly its max age",
        EXECUTOR,
        "return value if 0 <= time.time() - stored_at < max_age else None",
        "return value if 0 <= time.time() - stored_at <= max_age else None",
        HEALTH,
        METRICS,
    ),
    _h(
        "a cached answer from the future is reused",
        EXECUTOR,
        "return value if 0 <= time.time() - stored_at < max_age else None",
        "return value if time.time() - stored_at < max_age else None",
        HEALTH,
        METRICS,
    ),
    # portal/health/lanes.py
    _h(
        "a probe with a query string takes the usual pool",
        LANES_PY,
        'path = target.split(b"?", 1)[0].decode("latin-1")',
        'path = target.decode("latin-1")',
        *LANES_ALL,
    ),
    _h(
        "a POST to a probe path takes its lane",
        LANES_PY,
        'and method.decode("latin-1") in PROBE_METHODS:',
        ":",
        *LANES_ALL,
    ),
    _h(
        "an HTTP/2-looking tus request takes the tus lane",
        LANES_PY,
        'if method not in TUS_METHODS or not version.startswith(b"HTTP/1."):',
        "if method not in TUS_METHODS:",
        *LANES_ALL,
    ),
)
