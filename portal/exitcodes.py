"""Exit codes of the portal's commands and jobs, the same for every one of them.

Cron, the ``portal-job`` wrapper, Kubernetes and operators read these: keep them stable.
Plain constants, so ``manage.py`` can use them before Django is set up.
"""

OK = 0  # done; also skipped (another run holds the lock) or stopped early by --max-seconds
PARTIAL = 1  # finished, but some work failed and stays for the next run (or an operator)
USAGE = 2  # bad usage or configuration: nothing was done
