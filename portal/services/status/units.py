"""Figures in the units a person reads at a glance: sizes in KiB/MiB/GiB, ages in words."""

SIZE_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB")
DURATION_STEPS = ((86400, "d"), (3600, "h"), (60, "min"), (1, "s"))


def binary_size(count):
    """``77921726464`` -> ``"72.6 GiB"``; below 1 KiB the exact byte count."""
    value = float(count)
    for unit in SIZE_UNITS:
        if abs(value) < 1024 or unit == SIZE_UNITS[-1]:
            break
        value /= 1024
    if unit == "bytes":
        return f"{int(count)} bytes"
    return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"


def duration(seconds):
    """``0.42`` -> ``"420 ms"``, ``75`` -> ``"1 min 15 s"``, ``10800`` -> ``"3 h"``."""
    if seconds is None:
        return "—"
    seconds = max(float(seconds), 0.0)
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    for index, (size, unit) in enumerate(DURATION_STEPS):
        if whole >= size:
            major, rest = divmod(whole, size)
            if major < 10 and index + 1 < len(DURATION_STEPS):
                minor_size, minor_unit = DURATION_STEPS[index + 1]
                minor = rest // minor_size
                if minor:
                    return f"{major} {unit} {minor} {minor_unit}"
            return f"{major} {unit}"
    return f"{whole} s"


def ago(seconds):
    """``12`` -> ``"12 s ago"``; ``None`` (never) -> ``"never"``."""
    if seconds is None:
        return "never"
    if seconds < 1:
        return "just now"
    return f"{duration(seconds)} ago"


def every(seconds):
    """A schedule: ``60`` -> ``"every 1 min"``."""
    return f"every {duration(seconds)}"


def share(part, whole):
    """``part`` as a whole percentage of ``whole`` (0 when ``whole`` is 0)."""
    return round(100 * part / whole) if whole else 0
