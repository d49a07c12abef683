"""What the ``/status`` page shows beyond the health checks; every query reads a bounded
number of index entries, whatever the history (``bench/status.py``)."""
