"""Where each part of an upload lies in its file, one rule for the server and the client
(``portal_upload``, which imports these plain values as the server does)."""

OPEN_STATUSES = ("init", "in_progress")


def part_count(size, chunk):
    """How many parts ``size`` bytes make."""
    return -(-size // chunk)


def part_offset(number, chunk):
    return (number - 1) * chunk


def part_size(number, chunk, size):
    """Every part is ``chunk`` bytes but the last, which holds the rest."""
    return min(chunk, size - part_offset(number, chunk))


def bytes_in_parts(parts, chunk, size):
    """How many bytes the first ``parts`` parts hold."""
    return min(parts * chunk, size)


def compact_ranges(numbers):
    """``[1, 2, 3, 5, 7, 8]`` -> ``"1-3,5,7-8"`` (input sorted ascending, no duplicates)."""
    spans = []
    for number in numbers:
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def parse_ranges(text):
    """The inverse of ``compact_ranges``: ``"1-3,5"`` -> ``[1, 2, 3, 5]``."""
    numbers = []
    for item in filter(None, (text or "").split(",")):
        low, _, high = item.partition("-")
        numbers.extend(range(int(low), int(high or low) + 1))
    return numbers
