"""Bench figures as documents: what a script printed, with the date and the machine.

``recording(name, save=True)`` copies everything the script prints to stdout while it
runs; at the end it writes ``docs/benchmarks/<name>.md``: the command line, the date
(UTC), the machine (CPU, cores, memory, kernel, Python, load average at the start) and the
printed figures verbatim, less the progress lines that the summary after them condenses
(each round's, each raw trial record). The docs link to these pages instead of pasting
numbers, so a figure in the docs is always one a script printed, and says where and when.
"""

import contextlib
import io
import os
import platform
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
DOCS = ROOT / "docs" / "benchmarks"
PROGRESS = re.compile(r"^(round \d+ |\[reliability\] |seeded )")
# A variant's raw lines, which the script's markdown table repeats when it prints one.
TABLED = re.compile(r"^(  (portal_cleanup|floor|per_row) +n=|  +steps: )")


def machine():
    """One line describing this machine, read from /proc where it can be."""
    cpu = _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown CPU"
    memory_kib = _proc_field("/proc/meminfo", "MemTotal")
    memory = f"{int(memory_kib.split()[0]) / 1024**2:.0f} GiB RAM" if memory_kib else "RAM unknown"
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory}, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}; load average {load} "
        "at the start"
    )


def _proc_field(path, name):
    with contextlib.suppress(OSError), open(path) as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key.strip() == name:
                return value.strip()
    return ""


class _Tee(io.TextIOBase):
    def __init__(self, stream):
        self.stream = stream
        self.copy = io.StringIO()

    def write(self, text):
        self.copy.write(text)
        return self.stream.write(text)

    def flush(self):
        self.stream.flush()


@contextlib.contextmanager
def recording(name, *, save, page=None):
    """Tee stdout for the block; with ``save``, write ``docs/benchmarks/<page>.md`` after
    (``page`` defaults to the script's ``name``: one script, several pages by option)."""
    command = " ".join(["python", f"bench/{name}.py", *sys.argv[1:]])
    started = datetime.now(UTC)
    where = machine()
    tee = _Tee(sys.stdout)
    sys.stdout = tee
    try:
        yield
    finally:
        sys.stdout = tee.stream
    if save:
        path = write(name, command, started, where, tee.copy.getvalue(), page=page or name)
        print(f"figures written to {path.relative_to(ROOT)}")


def summary(printed):
    """What the script printed without its progress lines, and how many were left out."""
    lines = printed.rstrip().splitlines()
    tabled = any(line.startswith("| ") for line in lines)
    kept = [
        line for line in lines if not PROGRESS.match(line) and not (tabled and TABLED.match(line))
    ]
    return "\n".join(kept), len(lines) - len(kept)


def write(name, command, started, where, printed, *, page):
    DOCS.mkdir(parents=True, exist_ok=True)
    path = DOCS / f"{page}.md"
    text, omitted = summary(printed)
    heading = "What the script printed"
    if omitted:
        heading += f" ({omitted} progress lines left out)"
    path.write_text(
        f"# bench/{name}.py\n\n"
        f"Produced by `{command}` on {started:%Y-%m-%d %H:%M} UTC.\n\n"
        f"Machine: {where}.\n\n"
        f"{heading}:\n\n"
        "```text\n"
        f"{text}\n"
        "```\n"
    )
    return path
