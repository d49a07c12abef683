"""Area catalog ``ops``, part 2: metrics and the status page (see ``mutant_area_ops.py``)."""

from tests.mutant_area_ops import (
    ACCESS,
    COLLECTOR,
    FIGURES,
    HTTP,
    METRICS,
    MVIEWS,
    PAGE,
    PAGE_PY,
    TREND,
    TREND_PY,
    _h,
    _s,
    maker,
)

MULTIPROC = "portal/metrics/multiproc.py"
MULTI = "tests/test_metrics_multiproc.py"
_mp = maker(MULTI)

MUTANTS = (
    # portal/metrics/http.py
    _h(
        "admin pages are labelled by their URL name",
        HTTP,
        '    if "admin" in match.namespaces:\n        return "admin"\n',
        "",
        ACCESS,
    ),
    _h(
        "any method becomes a label",
        HTTP,
        'return method if method in KNOWN_METHODS else "other"',
        "return method",
        ACCESS,
    ),
    _h(
        "an escaped exception is counted as 2xx",
        HTTP,
        'return "5xx"  # an exception escaped',
        'return "2xx"  # an exception escaped',
        ACCESS,
    ),
    _h(
        "a status label is the exact code",
        HTTP,
        'return f"{response.status_code // 100}xx"',
        'return f"{response.status_code}"',
        ACCESS,
    ),
    _h(
        "a request answered before resolution is labelled by its path",
        HTTP,
        'return PATH_LABELS.get(request.path_info, "unresolved")',
        "return request.path_info",
        ACCESS,
    ),
    # portal/metrics/views.py
    _h(
        "the metrics token needs Bearer capitalised",
        MVIEWS,
        'scheme.lower() != "bearer"',
        'scheme != "Bearer"',
        ACCESS,
    ),
    _h(
        "the metrics token is refused after two spaces",
        MVIEWS,
        "    presented = presented.strip()\n",
        "",
        ACCESS,
    ),
    _h(
        "any active user may read the metrics",
        MVIEWS,
        "if not (user.is_active and user.is_staff):",
        "if not user.is_active:",
        ACCESS,
    ),
    _h(
        "a metrics scrape may be cached",
        MVIEWS,
        '    response["Cache-Control"] = NEVER_CACHE\n',
        "",
        ACCESS,
    ),
    _h(
        "the metrics answer a POST",
        MVIEWS,
        'ALLOWED_METHODS = ("GET", "HEAD")',
        'ALLOWED_METHODS = ("GET", "HEAD", "POST")',
        ACCESS,
    ),
    _h(
        "a monitoring token's database error is a 500",
        MVIEWS,
        "            except DatabaseError as exc:\n",
        "            except ZeroDivisionError as exc:\n",
        ACCESS,
    ),
    # portal/metrics/collector.py
    _h(
        "portal_metrics_database_up reads 1 without a database",
        COLLECTOR,
        "samples=[((), 1 if ok else 0)],",
        "samples=[((), 1)],",
        METRICS,
    ),
    _h(
        "every outcome of the last run reads 1",
        COLLECTOR,
        "((j.command, outcome), 1 if j.last_outcome == outcome else 0)",
        "((j.command, outcome), 1)",
        METRICS,
    ),
    _h(
        "a job that never succeeded has no success timestamp sample",
        COLLECTOR,
        "[((j.command,), j.last_success_at.timestamp() if j.last_success_at else 0) for j in jobs]",
        "[((j.command,), j.last_success_at.timestamp()) for j in jobs if j.last_success_at]",
        METRICS,
    ),
    _h(
        "the storage's minimum free is its free bytes",
        COLLECTOR,
        "[((s.storage,), s.min_free_bytes) for s in space],",
        "[((s.storage,), s.free_bytes) for s in space],",
        METRICS,
    ),
    # portal/metrics/figures.py
    _h(
        "counts do not stop at the cap",
        FIGURES,
        'return model.objects.filter(**filters).values("status")[:COUNT_CAP].count()',
        'return model.objects.filter(**filters).values("status").count()',
        METRICS,
    ),
    _h(
        "a negative count of a run is reported",
        FIGURES,
        "items[item] = int(value) if is_number and value >= 0 else 0",
        "items[item] = int(value) if is_number else 0",
        METRICS,
    ),
    _h(
        "the reserved bytes forget what was received",
        FIGURES,
        'reserved=Sum(F("total_size_bytes") - F("bytes_received"))',
        'reserved=Sum(F("total_size_bytes"))',
        METRICS,
    ),
    # "a running run started with the last finished one counts as running" (> to >=) is left
    # out: two runs of one job never share a start instant (the host's job lock runs them
    # one after the other), and for a tie neither answer is more right.
    # portal/metrics/multiproc.py
    _mp(
        "a merge forgets the totals merged before",
        MULTIPROC,
        "sources = [target, *dead] if os.path.exists(target) else dead",
        "sources = dead",
        MULTI,
    ),
    _mp(
        "merged files stay and count again",
        MULTIPROC,
        "        for source in dead:\n            os.unlink(source)\n",
        "",
        MULTI,
    ),
    _mp(
        "a live master's directory is removed as abandoned",
        MULTIPROC,
        "if not pid.isdigit() or process_alive(int(pid)):",
        "if not pid.isdigit():",
        MULTI,
    ),
    _mp(
        "a master removes a directory it does not own",
        MULTIPROC,
        "if path and os.environ.get(OWNER_VARIABLE) == str(os.getpid()):",
        "if path:",
        MULTI,
    ),
    _mp(
        "a live worker missing from the list is merged",
        MULTIPROC,
        "return pid not in alive and not process_alive(pid)",
        "return pid not in alive",
        MULTI,
    ),
    # portal/services/status/page.py
    _s(
        "under 1 s reads in seconds",
        PAGE_PY,
        "    if seconds < 1:\n",
        "    if seconds < 0.5:\n",
        PAGE,
    ),
    _s(
        "under 10 s loses its decimal",
        PAGE_PY,
        "    if seconds < 10:\n",
        "    if seconds < 5:\n",
        PAGE,
    ),
    _s(
        "a second ago is just now",
        PAGE_PY,
        '"just now" if seconds < 1 else',
        '"just now" if seconds <= 1 else',
        PAGE,
    ),
    _s(
        "a reason ending in a question gets a full stop",
        PAGE_PY,
        'text.endswith((".", "?", "!"))',
        'text.endswith(".")',
        PAGE,
    ),
    _s(
        "an unknown state has no mark",
        PAGE_PY,
        'STATE_MARKS.get(name, "?")',
        'STATE_MARKS.get(name, "")',
        PAGE,
    ),
    _s(
        "a free volume below the warning level reads enough",
        PAGE_PY,
        "    elif warn and free < warn:\n",
        "    elif False:\n",
        PAGE,
    ),
    _s(
        "an old pending event exactly at the warning age is stuck",
        PAGE_PY,
        "elif oldest is not None and oldest > OUTBOX_BACKLOG_WARN_AGE.total_seconds():",
        "elif oldest is not None and oldest >= OUTBOX_BACKLOG_WARN_AGE.total_seconds():",
        PAGE,
    ),
    _s(
        "any staff member may requeue",
        PAGE_PY,
        'user.is_authenticated and user.is_staff and user.has_perm("portal.change_outboxevent")',
        "user.is_authenticated and user.is_staff",
        PAGE,
    ),
    _s(
        "a job whose last run failed does not say so",
        PAGE_PY,
        "    if runs and runs[0].outcome == JobRun.Outcome.FAILED:\n",
        "    if False:\n",
        PAGE,
    ),
    # portal/services/status/trend.py
    # "an upload finished at the hour's end counts in it" (finished_at__lte=end) is
    # equivalent: ``end`` is the hour after the last one shown, never read back or cached.
    _s(
        "a backlog of True is plotted",
        TREND_PY,
        "if isinstance(backlog, int) and not isinstance(backlog, bool):",
        "if isinstance(backlog, int):",
        TREND,
    ),
    _s(
        "the hour labels come every four hours",
        TREND_PY,
        'if hour.hour % 3 == 0 else ""',
        'if hour.hour % 4 == 0 else ""',
        TREND,
    ),
    _s(
        "failed dispatch runs are plotted",
        TREND_PY,
        "for outcome in (JobRun.Outcome.OK, JobRun.Outcome.PARTIAL):",
        "for outcome in JobRun.Outcome.values:",
        TREND,
    ),
)
