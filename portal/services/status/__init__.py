"""What the ``/status`` page shows an operator, beyond the health checks' figures.

- ``units``   sizes in KiB/MiB/GiB, durations and ages in words
- ``page``    the page's sections: why each job is (not) healthy, its recent runs, the
              failed outbox events, the disks in human units
- ``trend``   uploads per hour and the outbox backlog per dispatch run, drawn as SVG
- ``actions`` the one change the page makes: requeue a failed outbox event

Every query reads a bounded number of index entries, whatever the size of the history
(``bench/status.py``), as ``portal.metrics.figures`` does for ``/metrics``.
"""
