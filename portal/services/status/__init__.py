"""What the ``/status`` page shows an operator beyond the health checks: ``units``,
``page`` (each section and why it is or is not healthy), ``trend`` (SVG), ``actions``
(requeue a failed outbox event).

Every query reads a bounded number of index entries, whatever the history
(``bench/status.py``).
"""
