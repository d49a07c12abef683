"""Small helpers for the queries every part upload makes.

For the short lookups of a request, Django's query compiler costs more than the database:
profiled on a part upload (docs/upload-performance.md), executing the SQL was a few per
cent of the request and compiling it most of the rest, in proportion to the columns
selected. So the part path selects the fields it reads (``only``) and looks rows up by
their unique keys without the ORDER BY that ``first()`` adds.
"""


def one_or_none(queryset):
    """The row of a lookup by a unique key, or None: ``first()`` without its ORDER BY."""
    rows = list(queryset[:1])
    return rows[0] if rows else None
