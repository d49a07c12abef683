"""What ``/proc`` says about a server's processes: children, CPU seconds, peak RSS."""

import os

CLK_TCK = os.sysconf("SC_CLK_TCK")


def children(pid):
    """The direct children of ``pid`` (gunicorn's workers); [] once it is gone."""
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found.extend(int(p) for p in handle.read().split())
    except OSError:
        pass
    return found


def cpu_seconds(pid):
    """utime + stime of a live process (all its threads), in seconds; 0 if gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_kb(pid):
    """``VmHWM``: the process's peak resident set since exec (or ``clear_refs``); 0 if gone."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
