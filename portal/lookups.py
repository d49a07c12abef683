"""For the short lookups of a part upload Django's query compiler costs more than the
database, in proportion to the columns selected (docs/upload-performance.md): the part path
selects the fields it reads (``only``) and adds no ORDER BY to a lookup by a unique key.
"""


def one_or_none(queryset):
    """The row of a lookup by a unique key, or None: ``first()`` without its ORDER BY."""
    rows = list(queryset[:1])
    return rows[0] if rows else None
