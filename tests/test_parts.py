"""The part layout server and client share (``portal.parts``): the parts tile the file."""

from hypothesis import given
from hypothesis import strategies as st

from portal.parts import (
    bytes_in_parts,
    compact_ranges,
    parse_ranges,
    part_count,
    part_offset,
    part_size,
)


@given(size=st.integers(1, 10**15), chunk=st.integers(1, 5 * 1024**3))
def test_the_parts_tile_the_file_and_only_the_last_is_short(size, chunk):
    count = part_count(size, chunk)
    last = part_size(count, chunk, size)
    assert part_offset(count, chunk) + last == size == bytes_in_parts(count, chunk, size)
    assert 1 <= last <= chunk
    if count > 1:
        assert part_size(count - 1, chunk, size) == chunk
        assert bytes_in_parts(count - 1, chunk, size) == part_offset(count, chunk)


@given(st.sets(st.integers(1, 200)))
def test_compact_ranges_round_trip(numbers):
    text = compact_ranges(sorted(numbers))
    assert parse_ranges(text) == sorted(numbers)
    assert compact_ranges([1, 2, 3, 5, 7, 8]) == "1-3,5,7-8"
