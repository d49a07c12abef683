"""Upper bounds shared by the settings (``boot.settings``) and the commands' options.

Far beyond any sane value, below what overflows a column, a date or a request at run
time, so an absurd value fails with one line that names it instead of a traceback later.
Plain constants: ``boot.settings`` imports them before Django is set up.
"""

HOUR = 3600
DAY = 24 * HOUR
YEAR = 365 * DAY

MAX_BATCH_SIZE = 10_000  # PORTAL_CLEANUP_BATCH_SIZE, portal_cleanup --batch-size
MAX_DISPATCH_LIMIT = 10_000_000  # portal_dispatch --limit
MAX_JOB_SECONDS = DAY  # --max-seconds of the jobs: a run longer than a day is a stuck run
MAX_CLIENT_PARALLEL = 64  # portal_upload --parallel: parts in flight
MAX_CLIENT_RETRIES = 100  # portal_upload --retries
MAX_CLIENT_TIMEOUT_SECONDS = DAY  # portal_upload --timeout
MAX_CHUNK_SIZE = 5 * 1024**3  # S3's largest single PUT; PORTAL_CHUNK_SIZE_MAX's bound
