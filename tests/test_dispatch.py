"""``manage.py portal_dispatch`` against a real runner: one run through a process (exit code,
JSON lines), the outcomes and options in-process, crashes and concurrency in processes."""

import io
import json
import logging
import subprocess
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError

from portal.models import JobRun, OutboxEvent
from tests.commands import from_command_line, run_command, usage_error
from tests.conftest import PYTHON, ROOT
from tests.outbox_helpers import SECRET, make_events
from tests.peers import self_signed_certificate
from tests.runner import RunnerServer


@pytest.fixture
def runner_settings(runner_settings, db):
    return runner_settings


@pytest.fixture
def dispatch_env(subprocess_env, runner):
    """Environment for a dispatcher process that delivers to the test runner."""
    return {
        **subprocess_env,
        "PORTAL_RUNNER_ENDPOINT": runner.url,
        "PORTAL_RUNNER_AUTH_SECRET": SECRET,
        "PORTAL_RUNNER_TIMEOUT_SECONDS": "2",
        "PORTAL_OUTBOX_BASE_DELAY_SECONDS": "10",
        "PORTAL_OUTBOX_MAX_ATTEMPTS": "3",
        "PORTAL_LOG_FORMAT": "json",
        "PORTAL_LOG_LEVEL": "debug",
    }


def start_dispatch(env, *args):
    return subprocess.Popen(
        [PYTHON, "manage.py", "portal_dispatch", "--json", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_dispatch(env, *args, timeout=60):
    proc = start_dispatch(env, *args)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def json_lines(out):
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def summary(out):
    """The ``--json`` summary: the one JSON line that is not a log record."""
    [line] = [d for d in json_lines(out) if "level" not in d]
    return line


def log_records(out, event):
    return [d for d in json_lines(out) if d.get("event") == event]


@pytest.fixture
def dispatch(runner_settings, caplog):
    """``portal_dispatch --json ARGS`` in-process: ``(exit code, summary, stderr, records)``."""
    runner_settings.PORTAL_OUTBOX_MAX_ATTEMPTS = 3
    caplog.set_level(logging.DEBUG, logger="portal")

    def run(*args):
        caplog.clear()
        result = run_command("portal_dispatch", "--json", *args)
        return result.code, json.loads(result.out), result.err, caplog.records

    return run


def events(records, name):
    return [record for record in records if getattr(record, "event", None) == name]


def in_process_dispatch(*args):
    out = io.StringIO()
    call_command("portal_dispatch", "--json", *args, stdout=out)
    return json.loads(out.getvalue())


def test_delivers_due_events_logs_them_and_records_the_run(dispatch_env, runner):
    """The process boundary: exit code, the summary and the JSON log lines on stdout."""
    events = make_events(3)

    code, out, err = run_dispatch(dispatch_env)

    assert code == 0, err
    assert summary(out)["delivered"] == 3
    assert sorted(runner.counts()) == sorted(str(e.pk) for e in events)
    assert all(r.signature_ok for r in runner.requests)
    assert OutboxEvent.objects.filter(status="delivered").count() == 3
    dispatched = log_records(out, "outbox.dispatched")
    assert {d["event_id"] for d in dispatched} == {str(e.pk) for e in events}
    assert all(d["attempt"] == 1 and d["duration_ms"] >= 0 for d in dispatched)
    assert all(d["job"] == "portal_dispatch" for d in dispatched)
    run = JobRun.objects.get(job="portal_dispatch")
    assert run.outcome == JobRun.Outcome.OK
    assert run.counts["delivered"] == 3
    assert SECRET not in out + err


def test_an_event_that_gives_up_exits_1_and_never_logs_the_secret(dispatch, runner):
    runner.set_mode("error")
    [event] = make_events(1, attempts=2)  # the third and last attempt

    code, summary, err, records = dispatch()

    assert code == 1
    assert summary["gave_up"] == 1
    [gave_up] = events(records, "outbox.gave_up")
    assert (gave_up.levelname, gave_up.event_id, gave_up.attempt) == ("ERROR", str(event.pk), 3)
    assert "--retry-failed" in err
    event = OutboxEvent.objects.get(pk=event.pk)
    assert (event.status, event.attempts) == (OutboxEvent.Status.FAILED, 3)
    logged = "".join(record.getMessage() for record in records)
    assert SECRET not in logged + err + event.last_error
    assert JobRun.objects.get(job="portal_dispatch").outcome == JobRun.Outcome.PARTIAL


def test_a_failed_delivery_that_is_rescheduled_exits_0(dispatch, runner):
    runner.set_mode("drop")
    make_events(2)

    code, summary, err, records = dispatch()

    assert code == 0, err
    assert summary["retried"] == 2
    assert len(runner.requests) == 2  # each dropped on a fresh connection: not sent again
    failed = events(records, "outbox.delivery_failed")
    assert [(d.levelname, d.error, d.attempt) for d in failed] == [
        ("WARNING", "RemoteDisconnected", 1)
    ] * 2
    assert all(d.next_attempt_at for d in failed)


def test_an_answer_too_long_to_read_does_not_spoil_the_next_delivery(dispatch, runner):
    """The unread rest of a long answer must not stay on the kept connection, where the
    next event's answer would be taken for it."""
    runner.script("huge")
    make_events(2)

    code, summary, err, _ = dispatch()

    assert code == 0, err
    assert (summary["delivered"], len(runner.requests)) == (2, 2)


@pytest.mark.parametrize("unset", ["PORTAL_RUNNER_ENDPOINT", "PORTAL_RUNNER_AUTH_SECRET"])
def test_bad_configuration_exits_2_with_one_clear_line(runner_settings, caplog, unset):
    setattr(runner_settings, unset, "")
    make_events(1)

    runner_settings.PORTAL_LOG_FORMAT = "json"
    with pytest.raises(SystemExit) as exited:
        from_command_line("portal_dispatch")
    assert exited.value.code == 2
    [record] = [r for r in caplog.records if r.name == "portal.commands"]
    assert (record.levelname, record.exit_code) == ("ERROR", 2)
    assert record.getMessage().startswith("Configuration error: ")
    assert f"{unset} is not set" in record.getMessage()

    runner_settings.PORTAL_LOG_FORMAT = "console"  # Django prints it: "CommandError: ..."
    with pytest.raises(CommandError, match=f"^Configuration error: .*{unset} is not set") as error:
        from_command_line("portal_dispatch")
    assert error.value.returncode == 2
    assert not JobRun.objects.exists()
    assert OutboxEvent.objects.get().status == OutboxEvent.Status.PENDING


def test_bad_usage_exits_2():
    code, err = usage_error("portal_dispatch", "--limit", "0")
    assert code == 2
    assert "argument --limit: '0' is not between 1 and" in err


def test_retry_failed_requeues_failed_events_and_delivers_them(runner, runner_settings):
    failed = make_events(2, status=OutboxEvent.Status.FAILED, attempts=4)

    result = in_process_dispatch("--retry-failed")

    assert (result["requeued"], result["delivered"]) == (2, 2)
    assert sorted(runner.counts()) == sorted(str(e.pk) for e in failed)
    assert set(OutboxEvent.objects.values_list("status", "attempts")) == {("delivered", 1)}


def test_limit_and_time_budget_options_reach_the_service(runner, runner_settings):
    make_events(3)

    limited = in_process_dispatch("--limit", "1", "--max-seconds", "30")
    rest = in_process_dispatch()

    assert (limited["delivered"], limited["stopped"]) == (1, "limit")
    assert (rest["delivered"], rest["stopped"]) == (2, "drained")
    assert len(runner.requests) == 3


def test_gave_up_in_process_raises_command_error_with_exit_code_1(runner, runner_settings):
    runner.set_mode("error")
    runner_settings.PORTAL_OUTBOX_MAX_ATTEMPTS = 1
    make_events(1)
    with pytest.raises(CommandError) as excinfo:
        call_command("portal_dispatch", stdout=io.StringIO())
    assert excinfo.value.returncode == 1


@pytest.mark.slow
def test_dispatcher_killed_mid_send_is_redelivered_after_its_lease(
    dispatch_env, runner, runner_settings
):
    runner.set_mode("hang")
    [event] = make_events(1)
    proc = start_dispatch({**dispatch_env, "PORTAL_RUNNER_TIMEOUT_SECONDS": "5"})
    try:
        runner.wait_for_requests(1, timeout=30)
    finally:
        proc.kill()
        proc.communicate()

    leased = OutboxEvent.objects.get(pk=event.pk)
    assert leased.status == OutboxEvent.Status.SENDING
    assert leased.attempts == 0
    runner.set_mode("ok")

    assert in_process_dispatch()["delivered"] == 0  # its lease still holds: nobody sends it
    assert len(runner.requests) == 1
    with time_machine.travel(leased.next_attempt_at + timedelta(seconds=1)):
        assert in_process_dispatch()["delivered"] == 1

    event = OutboxEvent.objects.get(pk=event.pk)
    assert (event.status, event.attempts) == (OutboxEvent.Status.DELIVERED, 1)
    assert runner.counts() == {str(event.pk): 2}  # at least once: the runner dedups
    assert all(r.signature_ok for r in runner.requests)


@pytest.mark.slow
def test_two_dispatchers_deliver_each_event_exactly_once(subprocess_env):
    """Claims never overlap: SKIP LOCKED on PostgreSQL, BEGIN IMMEDIATE on SQLite.

    A slow runner (10 ms an answer, 5 s for all) keeps both processes busy at once.
    """
    with RunnerServer("ok", secret=SECRET, delay=0.01) as slow_runner:
        env = {
            **subprocess_env,
            "PORTAL_RUNNER_ENDPOINT": slow_runner.url,
            "PORTAL_RUNNER_AUTH_SECRET": SECRET,
            "PORTAL_LOG_LEVEL": "warning",
        }
        events = make_events(500)
        procs = [start_dispatch(env), start_dispatch(env)]
        outputs = [proc.communicate(timeout=120) for proc in procs]

    assert [proc.returncode for proc in procs] == [0, 0], [err for _, err in outputs]
    counts = slow_runner.counts()
    assert set(counts) == {str(e.pk) for e in events}
    assert set(counts.values()) == {1}
    delivered = [summary(out)["delivered"] for out, _ in outputs]
    assert sum(delivered) == 500
    assert min(delivered) > 0, f"the dispatchers did not overlap: {delivered}"
    assert OutboxEvent.objects.filter(status="delivered").count() == 500


@pytest.mark.slow
def test_a_trickling_runner_holds_a_run_no_longer_than_one_delivery_deadline(dispatch_env, runner):
    """Headers, then a byte a second: each read is in time, the delivery is not.

    A second dispatcher started meanwhile finds the event leased and sends nothing.
    """
    runner.set_mode("trickle")
    [event] = make_events(1, attempts=1)
    first = start_dispatch(dispatch_env, "--limit", "1", "--max-seconds", "5")
    second = None
    try:
        runner.wait_for_requests(1, timeout=30)
        in_flight = OutboxEvent.objects.get(pk=event.pk)
        second = start_dispatch(dispatch_env)
        second_out, second_err = second.communicate(timeout=60)
        first_out, first_err = first.communicate(timeout=60)
    finally:
        for proc in filter(None, (first, second)):
            proc.kill()
            proc.communicate()

    assert (first.returncode, second.returncode) == (0, 0), first_err + second_err
    ran = summary(first_out)
    assert (ran["retried"], ran["lost_lease"], ran["delivered"]) == (1, 0, 0)
    assert ran["duration_ms"] < (2 + 1.5) * 1000  # PORTAL_RUNNER_TIMEOUT_SECONDS=2
    assert summary(second_out)["delivered"] == 0
    assert [r.headers["x-portal-attempt"] for r in runner.requests] == ["2"]
    assert (in_flight.status, in_flight.attempts) == (OutboxEvent.Status.SENDING, 1)
    event = OutboxEvent.objects.get(pk=event.pk)
    assert (event.status, event.attempts) == (OutboxEvent.Status.PENDING, 2)
    assert event.last_error.endswith(f"127.0.0.1:{runner.port} did not answer within 2 s")
    assert event.next_attempt_at > in_flight.updated_at
    [failed] = log_records(first_out, "outbox.delivery_failed")
    assert failed["error"] == "TimeoutError"


def test_a_self_signed_runner_certificate_is_named_in_the_log_and_last_error(
    dispatch, runner_settings, tmp_path
):
    with RunnerServer("ok", secret=SECRET, tls=self_signed_certificate(tmp_path)) as tls_runner:
        runner_settings.PORTAL_RUNNER_ENDPOINT = tls_runner.url
        [event] = make_events(1)
        code, _, err, records = dispatch()

    assert code == 0, err
    [failed] = events(records, "outbox.delivery_failed")
    assert failed.error == "TLSFailed"
    assert "certificate verify failed" in failed.getMessage()
    assert "certificate verify failed" in OutboxEvent.objects.get(pk=event.pk).last_error
    assert "Bad file descriptor" not in failed.getMessage() + err
