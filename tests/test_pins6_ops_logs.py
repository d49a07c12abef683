"""Logs (``portal.observability``, ``boot.logging``): what a record must not carry."""

import logging
import socket
from datetime import UTC, date, datetime

from django.core.servers.basehttp import WSGIRequestHandler

from tests.test_pins_ops_logs import capture, timers  # noqa: F401  (fixtures)


def runserver_line(status):
    """Django's own runserver access line (``WSGIRequestHandler.log_message``), as logged for
    a request on a real socket."""
    handler = WSGIRequestHandler.__new__(WSGIRequestHandler)
    handler.request = socket.socket()
    try:
        handler.log_message('"%s" %s %s', "GET /api/v1/files HTTP/1.1", str(status), "17")
    finally:
        handler.request.close()


def test_runserver_lines_carry_neither_its_server_time_nor_the_socket(capture):  # noqa: F811
    """``server_time`` repeats the timestamp in a local format and the socket is no field: both
    are dropped, so a development line has one time, in UTC, like every other line."""
    logger, records = capture()
    server = logging.getLogger("django.server")
    (handler,) = logger.handlers
    level, server.level = server.level, logging.INFO
    server.addHandler(handler)
    try:
        runserver_line(200)
    finally:
        server.removeHandler(handler)
        server.setLevel(level)
    [record] = records()
    assert record["logger"] == "django.server"
    assert record["status_code"] == 200
    assert "server_time" not in record
    assert "request" not in record
    assert record["timestamp"].endswith("+00:00")


def test_extra_values_of_other_types_are_logged_as_readable_json(capture):  # noqa: F811
    """A datetime extra is its ISO form (``T``, offset), an exception its type and message, a
    set a list, numbers stay numbers: each scrubbed like the message, none a Python repr."""
    logger, records = capture(secrets=["hunter2-secret"])
    logger.info(
        "values",
        extra={
            "at": datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
            "day": date(2030, 1, 2),
            "error": OSError("disk hunter2-secret gone"),
            "tags": {"hunter2-secret"},
            "count": 7,
            "ratio": 0.5,
            "flag": False,
        },
    )
    [record] = records()
    assert record["at"] == "2030-01-02T03:04:05+00:00"
    assert record["day"] == "2030-01-02"
    assert record["error"] == "OSError: disk [REDACTED] gone"
    assert record["tags"] == ["[REDACTED]"]
    assert (record["count"], record["ratio"], record["flag"]) == (7, 0.5, False)


def test_an_explicit_request_id_wins_over_the_one_of_the_request_on_the_record(capture):  # noqa: F811
    """The request a record carries fills in ``request_id`` only when nothing set it: the id
    passed by the caller (or bound around the call) is the one logged."""
    from django.test import RequestFactory

    from portal.observability import bind

    logger, records = capture()
    request = RequestFactory().get("/api/v1/files")
    request.request_id = "from-request"
    logger.warning("explicit", extra={"request": request, "request_id": "from-caller"})
    with bind(request_id="from-context"):
        logger.warning("bound", extra={"request": request})
    logger.warning("alone", extra={"request": request})
    explicit, bound, alone = records()
    assert explicit["request_id"] == "from-caller"
    assert bound["request_id"] == "from-context"
    assert alone["request_id"] == "from-request"


def test_gunicorns_placeholders_for_absent_headers_are_no_fields():
    """gunicorn writes ``-`` (or nothing) for a header that was not sent: no ``user_agent``,
    ``client_addr`` or ``request_id`` field may then claim the value "-" or ""."""
    from boot.logging import GunicornAccessFilter
    from tests.test_pins_ops_logs import access_record

    absent = access_record(200, a="-", **{"{x-forwarded-for}i": "-", "{x-request-id}o": ""})
    empty = access_record(404, a="-", **{"{x-forwarded-for}i": "", "{x-request-id}o": "-"})
    for record in (absent, empty):
        assert GunicornAccessFilter(behind_proxy=True).filter(record)
        assert record.remote_addr == "10.0.0.9"
        for field in ("user_agent", "client_addr", "request_id"):
            assert not hasattr(record, field), (field, getattr(record, field))


def test_a_finished_drain_says_so_once_in_the_masters_log(tmp_path, timers):  # noqa: F811
    """The operator reads when the drain began and when the graceful stop starts: both lines,
    in order, word for word as docs/topology.md quotes them."""
    from portal.health import drain
    from tests.test_pins_ops_logs import Arbiter

    arbiter = Arbiter(tmp_path)
    drain.ShutdownDrain.install(arbiter, 2.5)
    arbiter.handle_term()
    arbiter.handle_alrm()  # the timer went off
    drain.clear_marker()
    assert arbiter.lines == [
        (
            "info",
            "draining: /ready answers 503 for 2.5s, then graceful stop (SIGTERM again: stop now)",
        ),
        ("info", "drain over: closing the listeners, finishing requests"),
    ]
    assert (timers, arbiter.stopped) == ([2.5, 0], 1)


def test_a_failed_ready_check_is_a_warning_of_the_portal_health_logger(
    db, settings, data_dir, caplog
):
    """``ready.check_failed`` comes from ``portal.health`` (the logger docs/logging.md names and
    operators filter on), at WARNING."""
    from django.test import Client

    from portal.health import executor as probes
    from tests.conftest import apply_storage
    from tests.test_pins6_ops_clocks import break_temp

    settings.PORTAL_READY_CACHE_SECONDS = 0
    probes.results.clear()
    apply_storage(settings, "local", data_dir)
    break_temp(data_dir)
    with caplog.at_level(logging.INFO):
        assert Client().get("/ready").status_code == 503
    failed = [r for r in caplog.records if getattr(r, "event", "") == "ready.check_failed"]
    assert [(r.name, r.levelname, r.check) for r in failed] == [
        ("portal.health", "WARNING", "storage:portal_temp")
    ]
