"""The project's crontab (deploy/cron), read as cron reads it."""

from tests.conftest import ROOT

CRON_DIR = ROOT / "deploy" / "cron"


def crontab_entries():
    """(schedule, user, command) for every job line of the crontab (cron.d format)."""
    entries = []
    for line in (CRON_DIR / "crontab").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" in line.split()[0]:
            continue
        fields = line.split(None, 6)
        entries.append((" ".join(fields[:5]), fields[5], fields[6]))
    return entries
