"""The page's trend as inline SVG: uploads and bytes per hour over 24 h, and the outbox
backlog per dispatch run."""

from dataclasses import dataclass
from datetime import timedelta

from django.core.cache import cache
from django.db.models import Count, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe

from portal.models import JobRun, UploadSession
from portal.services.outbox.dispatch import BACKLOG_KEY
from portal.services.outbox.dispatch import JOB as DISPATCH_JOB
from portal.services.status.page import binary_size

HOURS = 24
BACKLOG_RUNS = 60
# A whole hour is counted once per process, this long after it ended (a session finished
# in its last instant may commit a moment later).
SETTLED_AFTER = timedelta(minutes=5)
CACHE_PREFIX = "portal.status.uploads."
CACHE_SECONDS = (HOURS + 1) * 3600
WIDTH, HEIGHT = 720, 150
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 18, 26


@dataclass(frozen=True)
class Bar:
    label: str  # under the bar (empty: none)
    value: float
    title: str  # the exact value, on hover


def hourly_uploads(now):
    """Uploads completed and their bytes for each of the last 24 hours, oldest first; a
    settled hour is cached, so a view counts only the hours it has not seen."""
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    hours = [end - timedelta(hours=HOURS - n) for n in range(HOURS)]
    keys = {hour: f"{CACHE_PREFIX}{hour:%Y%m%dT%H}" for hour in hours}
    known = cache.get_many(list(keys.values()))
    missing = [hour for hour in hours if keys[hour] not in known]
    counted = count_uploads(missing[0], end) if missing else {}
    settled = {
        keys[hour]: counted.get(hour, (0, 0))
        for hour in missing
        if hour + timedelta(hours=1) <= now - SETTLED_AFTER
    }
    cache.set_many(settled, timeout=CACHE_SECONDS)
    figures = {**counted, **{hour: known[keys[hour]] for hour in hours if keys[hour] in known}}
    return [(hour, *figures.get(hour, (0, 0))) for hour in hours]


def count_uploads(start, end):
    """{hour: (uploads, bytes)} of sessions completed in [start, end): a range of
    ``session_status_finished``."""
    rows = (
        UploadSession.objects.filter(
            status=UploadSession.Status.COMPLETE, finished_at__gte=start, finished_at__lt=end
        )
        .annotate(hour=TruncHour("finished_at"))
        .values("hour")
        .annotate(uploads=Count("pk"), bytes=Sum("total_size_bytes"))
        .order_by()
    )
    return {row["hour"]: (row["uploads"], int(row["bytes"] or 0)) for row in rows}


def backlog_per_run(limit=BACKLOG_RUNS):
    """(started_at, backlog left) of the last ``limit`` dispatch runs that recorded one."""
    runs = []
    for outcome in (JobRun.Outcome.OK, JobRun.Outcome.PARTIAL):
        latest = JobRun.objects.filter(job=DISPATCH_JOB, outcome=outcome)
        runs += latest.order_by("-started_at").values("started_at", "counts")[:limit]
    runs.sort(key=lambda run: run["started_at"])
    points = []
    for run in runs[-limit:]:
        backlog = run["counts"].get(BACKLOG_KEY) if isinstance(run["counts"], dict) else None
        if isinstance(backlog, int) and not isinstance(backlog, bool):
            points.append((run["started_at"], backlog))
    return points


def bar_chart(title, bars, *, summary, value_text=str):
    """An SVG bar chart: one ink, the peak labelled, the words in ``<title>``/``<desc>``."""
    peak = max((bar.value for bar in bars), default=0)
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = inner_w / max(len(bars), 1)
    peak_index = max(range(len(bars)), key=lambda n: bars[n].value) if bars else None
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="100%" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" class="trend">',
        f"<title>{escape(title)}</title><desc>{escape(summary)}</desc>",
        f'<line x1="{LEFT}" y1="{TOP + inner_h}" x2="{WIDTH - RIGHT}" y2="{TOP + inner_h}" '
        'stroke="#1f2328"/>',
        f'<text x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end">{escape(value_text(peak))}</text>',
        f'<text x="{LEFT - 6}" y="{TOP + inner_h}" text-anchor="end">0</text>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{WIDTH - RIGHT}" y2="{TOP}" stroke="#8c959f" '
        'stroke-dasharray="3 3"/>',
    ]
    for index, bar in enumerate(bars):
        height = inner_h * bar.value / peak if peak else 0
        x = LEFT + index * slot + slot * 0.15
        y = TOP + inner_h - height
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{height:.1f}" '
            f'fill="#57606a"><title>{escape(bar.title)}</title></rect>'
        )
        if bar.label:
            parts.append(
                f'<text x="{x + slot * 0.35:.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
                f"{escape(bar.label)}</text>"
            )
        if index == peak_index and peak:
            parts.append(
                f'<text x="{x + slot * 0.35:.1f}" y="{max(y - 3, TOP - 4):.1f}" '
                f'text-anchor="middle" font-weight="bold">{escape(value_text(bar.value))}</text>'
            )
    parts.append("</svg>")
    # Safe: the markup is ours and every text in it went through escape() above.
    return mark_safe("".join(parts))  # noqa: S308


def uploads_charts(hours):
    total = sum(uploads for _, uploads, _ in hours)
    total_bytes = sum(size for _, _, size in hours)
    busiest = max(hours, key=lambda row: row[1])
    when = f"{busiest[0]:%H}:00"
    labels = [f"{hour:%H}h" if hour.hour % 3 == 0 else "" for hour, _, _ in hours]
    count_bars = [
        Bar(label, uploads, f"{hour:%H}:00 to {hour:%H}:59 UTC: {uploads} upload(s)")
        for label, (hour, uploads, _) in zip(labels, hours, strict=True)
    ]
    byte_bars = [
        Bar(label, size, f"{hour:%H}:00 to {hour:%H}:59 UTC: {binary_size(size)}")
        for label, (hour, _, size) in zip(labels, hours, strict=True)
    ]
    count_summary = (
        f"{total} upload(s) in 24 h; busiest hour {when} UTC with {busiest[1]}"
        if total
        else "no upload completed in 24 h"
    )
    bytes_summary = f"{binary_size(total_bytes)} stored in 24 h"
    return {
        "uploads_summary": count_summary,
        "uploads_svg": bar_chart("Uploads stored per hour", count_bars, summary=count_summary),
        "bytes_summary": bytes_summary,
        "bytes_svg": bar_chart(
            "Bytes stored per hour", byte_bars, summary=bytes_summary, value_text=binary_size
        ),
    }


def backlog_chart(points):
    if not points:
        summary = "no dispatch run has recorded its backlog yet"
        return {"backlog_summary": summary, "backlog_svg": ""}
    last_at, last = points[-1]
    peak_at, peak = max(points, key=lambda point: point[1])
    summary = (
        f"{last} event(s) waiting after the last run ({last_at:%H:%M} UTC); "
        f"at most {peak} over the last {len(points)} runs ({peak_at:%H:%M} UTC)"
    )
    step = max(len(points) // 6, 1)
    bars = [
        Bar(
            f"{at:%H:%M}" if (len(points) - 1 - n) % step == 0 else "",
            backlog,
            f"run at {at:%H:%M:%S} UTC: {backlog} event(s) waiting after it",
        )
        for n, (at, backlog) in enumerate(points)
    ]
    svg = bar_chart("Outbox backlog after each dispatch run", bars, summary=summary)
    return {"backlog_summary": summary, "backlog_svg": svg}


def trend_context(now=None):
    """The three charts and their one-line summaries."""
    now = now or timezone.now()
    return {
        **uploads_charts(hourly_uploads(now)),
        **backlog_chart(backlog_per_run()),
    }
