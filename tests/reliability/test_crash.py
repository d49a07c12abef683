"""Crash: SIGKILL ``portal_cleanup`` and ``portal_dispatch`` at random moments, run them again.

Invariant 6 of docs/design.md: killing any job at any instant and running it again restores
1-5. Each test seeds a world of sessions in every state with real objects (``world.py``:
about 2,500 sessions and 4,600 objects for cleanup; 500 sessions and a backlog of 2,000
events for dispatch), then repeats a trial until ``PORTAL_CRASH_TRIALS`` kills (default
50; 20 for the cleanup test on S3, where the dispatch test, which touches no storage,
does not run) have landed mid-run:

1. top the world up (cleanup: one more unit of every kind; dispatch: 250 more events), so
   every run has work to interrupt (the first trial meets the whole initial seed);
2. start the command (a forked child of a preloaded process, ``zygote.py``) and SIGKILL it
   after a delay drawn uniformly over the run's expected duration, which is measured by a
   calibration run and updated from every trial;
3. run the command again to completion, as cron would (dispatch: with the clock past the
   dead run's lease); it must exit 0;
4. check invariants 1-5 and that nothing that must survive is gone.

The killed runs use small batches (many transactions, many moments between a storage
delete and its database write). One line per test reports the trials, where the kills
landed and the violations (``-s`` shows it); any violation fails the test.
"""

import random
import re
import statistics
from collections import Counter

import pytest

from portal.models import JobRun, OutboxEvent
from portal.services.outbox import LEASE_MARGIN_SECONDS
from tests.conftest import TEST_STORAGE
from tests.reliability import invariants
from tests.reliability.conftest import crash_trials
from tests.reliability.world import UNIT, missing_survivors, seed_events, seed_world
from tests.runner import RunnerServer

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

# The initial world: 25 units, about 2,500 sessions and 4,600 objects. On S3, where every
# object goes through the in-process moto server (about 6 ms each), 10 units, and each
# trial tops up half a unit.
ON_S3 = TEST_STORAGE == "s3"
BIG_SCALE = 10 if ON_S3 else 25
TOP_UP = {kind: max(1, count // 2) for kind, count in UNIT.items()} if ON_S3 else None
DISPATCH_WORLD_SCALE = 2 if ON_S3 else 5
KILLED_BATCH_SIZE = "20"
VERIFY_SAMPLE = 10  # final objects re-hashed per trial (all of them at the end)
SECRET = "crash-runner-secret"
RUNNER_TIMEOUT = 1.0
DISPATCH_TOP_UP = 250
DISPATCH_BACKLOG = 2000
PROGRESS = re.compile(r"^cleanup (\w+): batch")


class KillClock:
    """Kill delays drawn uniformly over [0, estimated run time].

    A run that finished before its kill tells the real duration: the estimate moves
    halfway to it. A kill that landed only says the run was longer than the delay: the
    estimate grows a little. So it settles just above the real duration, and the kills
    spread over the whole run, a few runs finishing first.
    """

    def __init__(self, estimate):
        self.estimate = estimate

    def draw(self):
        return random.uniform(0, self.estimate)

    def learn(self, outcome):
        if outcome.killed:
            self.estimate *= 1.05
        else:
            self.estimate = (self.estimate + outcome.elapsed) / 2


class Tally:
    """Trials, kills and where they landed, violations: the test's one-line report."""

    def __init__(self):
        self.attempts = 0
        self.kills = 0
        self.landed = Counter()
        self.violations = []
        self.reruns_skipped = 0
        self.clean_runs = []  # seconds of top-up runs that finished (calibration included)
        self.recoveries = []  # seconds of a killed run plus the rerun that completed it

    def figures(self):
        where = " ".join(f"{name}:{count}" for name, count in self.landed.most_common())
        clean = statistics.median(self.clean_runs) if self.clean_runs else float("nan")
        recovery = statistics.median(self.recoveries) if self.recoveries else float("nan")
        return {
            "trials": self.attempts,
            "kills_landed": self.kills,
            "kill_points": f"({where})",
            "violations": len(self.violations),
            "killed_plus_rerun_ms": f"{recovery * 1000:.0f} (clean run {clean * 1000:.0f}, "
            f"ratio {recovery / clean:.2f})",
        }

    def timed(self, killed, rerun, *, first):
        if killed.killed:
            self.recoveries.append(killed.elapsed + rerun.elapsed)
        elif not first:
            self.clean_runs.append(killed.elapsed)


# --- portal_cleanup ------------------------------------------------------------------------


def cleanup_to_completion(zygote, tally):
    """Run cleanup again until it is not skipped (a killed run's PostgreSQL session may
    hold the advisory lock for a moment after the kill); it must exit 0."""
    for _ in range(50):
        run = zygote.run("portal_cleanup", "--json")
        assert run.exit == 0, f"rerun exited {run.exit}: {run.stdout[-3000:]}{run.stderr[-3000:]}"
        if run.summary("portal_cleanup")["outcome"] != "skipped":
            return run
        tally.reruns_skipped += 1
    raise AssertionError("cleanup was skipped 50 times in a row: the lock was never released")


def running_cleanups():
    """The rerun holds the lock, so it must have closed every killed run's row."""
    rows = JobRun.objects.filter(job="portal_cleanup", outcome=JobRun.Outcome.RUNNING)
    return list(rows.values_list("pk", flat=True))


def kill_point(stderr):
    """The step the killed run was in: from its last ``-v 2`` progress line."""
    steps = [m.group(1) for line in stderr.splitlines() if (m := PROGRESS.match(line))]
    return steps[-1] if steps else "start"


def test_cleanup_killed_at_random_moments_restores_the_invariants(
    subprocess_env, zygote, owner, report
):
    commands = zygote(subprocess_env)
    killed_args = ("portal_cleanup", "--json", "-v", "2", "--batch-size", KILLED_BATCH_SIZE)
    # Calibration: a run with nothing to do, then one unit of work, both to the end.
    idle = commands.run(*killed_args).elapsed
    seeded = seed_world(owner, 1, unit=TOP_UP)
    calibration = commands.run(*killed_args)
    assert calibration.exit == 0, calibration.stdout[-3000:]
    clock = KillClock(calibration.elapsed)
    live, complete = list(seeded.live_sessions), list(seeded.complete_sessions)
    events = list(seeded.pending_events)
    unit_objects = seeded.objects
    seeded = seed_world(owner, BIG_SCALE)
    first_estimate = idle + (calibration.elapsed - idle) * seeded.objects / unit_objects
    totals = {"sessions": seeded.sessions, "objects": seeded.objects}
    tally = Tally()
    tally.clean_runs.append(calibration.elapsed)
    target = crash_trials(storage_heavy=True)
    while tally.kills < target and tally.attempts < 2 * target:
        if tally.attempts:
            seeded = seed_world(owner, 1, unit=TOP_UP)
            totals["sessions"] += seeded.sessions
            totals["objects"] += seeded.objects
        live += seeded.live_sessions
        complete += seeded.complete_sessions
        events += seeded.pending_events
        first = tally.attempts == 0
        delay = random.uniform(0, 0.9 * first_estimate) if first else clock.draw()
        killed = commands.run(*killed_args, kill_after=delay)
        tally.attempts += 1
        if killed.killed:
            tally.kills += 1
            tally.landed[kill_point(killed.stderr)] += 1
        else:
            assert killed.exit == 0, killed.stdout[-3000:]
            tally.landed["finished"] += 1
        rerun = cleanup_to_completion(commands, tally)
        tally.timed(killed, rerun, first=first)
        if not first:
            clock.learn(killed)
        found = invariants.check_all(verify_files=VERIFY_SAMPLE, expected_events=events)
        found += missing_survivors(live, complete)
        found += [f"JobRun {pk} of a dead cleanup still running" for pk in running_cleanups()]
        tally.violations += [f"trial {tally.attempts}: {v}" for v in found]

    final = invariants.check_all(expected_events=events) + missing_survivors(live, complete)
    tally.violations += [f"final: {v}" for v in final]
    report(
        "crash portal_cleanup",
        **tally.figures(),
        reruns_skipped=tally.reruns_skipped,
        seeded_sessions=totals["sessions"],
        seeded_objects=totals["objects"],
    )
    assert tally.kills >= target // 2, f"only {tally.kills} kills landed mid-run"
    assert not tally.violations, "\n".join(tally.violations[:50])


# --- portal_dispatch -----------------------------------------------------------------------


def complete_body(request):
    """False for a POST whose body the SIGKILL cut short (the runner read what came)."""
    return len(request.body) == int(request.headers.get("content-length") or 0)


def received(runner):
    """Event id -> complete, correctly signed requests the runner got."""
    return Counter(r.event_id for r in runner.requests if complete_body(r) and r.signature_ok)


def lease_seconds():
    return 2 * (RUNNER_TIMEOUT + LEASE_MARGIN_SECONDS)


@pytest.mark.skipif(
    ON_S3,
    reason="portal_dispatch touches no storage: the SQLite and PostgreSQL passes kill it; "
    "on S3 only the seeding would differ",
)
def test_dispatch_killed_at_random_moments_loses_no_event(subprocess_env, zygote, owner, report):
    with RunnerServer("ok", secret=SECRET) as runner:
        env = {
            **subprocess_env,
            "PORTAL_RUNNER_ENDPOINT": runner.url,
            "PORTAL_RUNNER_AUTH_SECRET": SECRET,
            "PORTAL_RUNNER_TIMEOUT_SECONDS": str(RUNNER_TIMEOUT),
            "PORTAL_LOG_LEVEL": "info",
        }
        commands = zygote(env)
        idle = commands.run("portal_dispatch", "--json").elapsed
        # A world whose cleanup is done, so 1-4 hold; its complete files' events wait.
        world = seed_world(owner, DISPATCH_WORLD_SCALE, unit={"old_delivered_events": 0})
        assert commands.run("portal_cleanup").exit == 0
        events = [str(pk) for pk in world.pending_events]
        # Calibration: one top-up's worth of events, delivered to the end.
        events += map(str, seed_events(DISPATCH_TOP_UP))
        calibration = commands.run("portal_dispatch", "--json")
        assert calibration.exit == 0, calibration.stdout[-3000:]
        clock = KillClock(calibration.elapsed)
        per_event = (calibration.elapsed - idle) / DISPATCH_TOP_UP
        first_estimate = idle + per_event * DISPATCH_BACKLOG
        events += map(str, seed_events(DISPATCH_BACKLOG))
        tally = Tally()
        tally.clean_runs.append(calibration.elapsed)
        target = crash_trials()
        while tally.kills < target and tally.attempts < 2 * target:
            if tally.attempts:
                events += map(str, seed_events(DISPATCH_TOP_UP))
            first = tally.attempts == 0
            delay = random.uniform(0, 0.9 * first_estimate) if first else clock.draw()
            due = OutboxEvent.objects.exclude(status=OutboxEvent.Status.DELIVERED).count()
            before = runner.stats()["requests"]
            killed = commands.run("portal_dispatch", "--json", kill_after=delay)
            tally.attempts += 1
            sent = runner.stats()["requests"] - before
            if killed.killed:
                tally.kills += 1
                point = "before_send" if sent == 0 else "mid_sends" if sent < due else "after_sends"
                tally.landed[point] += 1
            else:
                assert killed.exit == 0, killed.stdout[-3000:]
                tally.landed["finished"] += 1
            # The next cron run, once the dead run's lease is over.
            rerun = commands.run("portal_dispatch", "--json", travel_seconds=lease_seconds() + 1)
            assert rerun.exit == 0, rerun.stdout[-3000:]
            tally.timed(killed, rerun, first=first)
            if not first:
                clock.learn(killed)
            found = invariants.check_all(
                settled=True,
                runner_counts=received(runner),
                expected_events=events,
                verify_files=VERIFY_SAMPLE,
            )
            tally.violations += [f"trial {tally.attempts}: {v}" for v in found]
        counts = received(runner)
        cut_short = sum(1 for r in runner.requests if not complete_body(r))
        forged = sum(1 for r in runner.requests if complete_body(r) and not r.signature_ok)
        requests = len(runner.requests)

    never = [event for event in events if not counts.get(event)]
    tally.violations += [f"never delivered: {event}" for event in never]
    report(
        "crash portal_dispatch",
        **tally.figures(),
        events=len(events),
        runner_requests=requests,
        redelivered=sum(counts.values()) - len(counts),
        cut_short_by_kill=cut_short,
        bad_signatures=forged,
    )
    assert forged == 0, "complete requests with a wrong signature"
    assert tally.kills >= target // 2, f"only {tally.kills} kills landed mid-run"
    assert not tally.violations, "\n".join(tally.violations[:50])
