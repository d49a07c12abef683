"""Settings as django-configurations classes: ``Base``, then ``Dev``, ``Test`` and ``Prod``.

Every value comes from the environment variable of the same name (docs/configuration.md).
"""

import os
from pathlib import Path

from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig
from configurations import Configuration

from boot import config as v
from boot.logging import FORMATS, LEVELS, build_logging
from portal import limits
from portal.health import drain
from portal.health import paths as probe_paths

BASE_DIR = Path(__file__).resolve().parent.parent
KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
TIB = 1024 * GIB
HOUR = 3600
YEAR_SECONDS = 365 * 24 * HOUR
# S3's limits: 5 TiB an object, 5 GiB one PUT.
MAX_FILE_SIZE_LIMIT = 5 * TIB
MAX_CHUNK_SIZE_LIMIT = 5 * GIB
S3_BUCKET_PATTERN = r"[A-Za-z0-9._-]{1,255}"  # botocore's own rule for bucket names
S3_REGION_PATTERN = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"


def _bounded_transfer_config():
    """Multipart transfers that buffer at most 4 x 8 MiB of a non-seekable stream; a part of
    exactly 8 MiB (the default) is one PutObject, not a multipart upload of one part."""
    config = TransferConfig(
        multipart_threshold=8 * MIB + 1, multipart_chunksize=8 * MIB, max_concurrency=4
    )
    config.max_in_memory_upload_chunks = 4  # an s3transfer option boto3's signature omits
    return config


class Base(Configuration):
    BASE_DIR = BASE_DIR
    DEBUG = False
    SECRET_KEY = v.NamedValue("")
    ALLOWED_HOSTS = v.ListValue(["localhost", "127.0.0.1", "[::1]"])
    CSRF_TRUSTED_ORIGINS = v.ListValue([])
    DATABASE_URL = v.NamedValue("")
    DATABASE_CONNECT_TIMEOUT_SECONDS = v.IntValue(3, min_value=1, max_value=HOUR)

    PORTAL_DATA_DIR = v.NamedValue(str(BASE_DIR / "var"))
    PORTAL_STORAGE = v.ChoiceValue("local", choices=("local", "s3"))
    AWS_STORAGE_BUCKET_NAME = v.PatternValue(
        "", pattern=S3_BUCKET_PATTERN, rule="must be a bucket name (letters, digits, . - _)"
    )
    AWS_S3_ENDPOINT_URL = v.HttpUrlValue("")
    AWS_S3_REGION_NAME = v.PatternValue(
        "us-east-1", pattern=S3_REGION_PATTERN, rule="must be a region name such as eu-central-1"
    )
    AWS_ACCESS_KEY_ID = v.NamedValue("")
    AWS_SECRET_ACCESS_KEY = v.NamedValue("")
    AWS_S3_CONNECT_TIMEOUT_SECONDS = v.FloatValue(2.0, max_value=HOUR)
    AWS_S3_READ_TIMEOUT_SECONDS = v.FloatValue(10.0, max_value=HOUR)
    AWS_S3_MAX_ATTEMPTS = v.IntValue(2, min_value=1, max_value=100)

    PORTAL_MAX_FILE_SIZE = v.ByteSizeValue(10 * GIB, min_value=1, max_value=MAX_FILE_SIZE_LIMIT)
    PORTAL_CHUNK_SIZE = v.ByteSizeValue(8 * MIB, min_value=1, max_value=MAX_CHUNK_SIZE_LIMIT)
    PORTAL_CHUNK_SIZE_MIN = v.ByteSizeValue(256 * KIB, min_value=1, max_value=MAX_CHUNK_SIZE_LIMIT)
    PORTAL_CHUNK_SIZE_MAX = v.ByteSizeValue(64 * MIB, min_value=1, max_value=MAX_CHUNK_SIZE_LIMIT)
    PORTAL_SESSION_TTL_HOURS = v.FloatValue(24.0, max_value=365 * 24)
    PORTAL_ORPHAN_GRACE_MINUTES = v.FloatValue(60.0, max_value=365 * 24 * 60)
    PORTAL_FAILED_SESSION_RETENTION_DAYS = v.FloatValue(7.0, max_value=100 * 365)
    PORTAL_CLEANUP_BATCH_SIZE = v.IntValue(1000, min_value=1, max_value=limits.MAX_BATCH_SIZE)
    PORTAL_OUTBOX_BASE_DELAY_SECONDS = v.FloatValue(10.0, max_value=YEAR_SECONDS)
    PORTAL_OUTBOX_MAX_DELAY_SECONDS = v.FloatValue(3600.0, max_value=YEAR_SECONDS)
    PORTAL_OUTBOX_MAX_ATTEMPTS = v.IntValue(12, min_value=1, max_value=1000)
    PORTAL_OUTBOX_RETENTION_DAYS = v.FloatValue(30.0, max_value=100 * 365)
    PORTAL_RUNNER_ENDPOINT = v.HttpUrlValue("")
    PORTAL_RUNNER_AUTH_SECRET = v.NamedValue("")
    PORTAL_RUNNER_TIMEOUT_SECONDS = v.FloatValue(10.0, max_value=HOUR)
    PORTAL_HEALTH_CHECK_TIMEOUT_SECONDS = v.FloatValue(3.0, max_value=HOUR)
    PORTAL_READY_CACHE_SECONDS = v.FloatValue(2.0, min_value=0, max_value=HOUR)
    # Well under the 60 s proxies allow a request by default.
    PORTAL_FINALIZE_WAIT_SECONDS = v.FloatValue(20.0, min_value=0, max_value=HOUR)
    PORTAL_S3_COPY_ASSEMBLY = v.BoolValue(True)
    PORTAL_METRICS_TOKEN = v.NamedValue("")
    # Guardrails (0 turns one off).
    PORTAL_MAX_OPEN_SESSIONS_PER_USER = v.IntValue(1000, min_value=0, max_value=10**7)
    PORTAL_MAX_PENDING_BYTES_PER_USER = v.ByteSizeValue(
        100 * GIB, min_value=0, max_value=1024 * TIB
    )
    PORTAL_MIN_FREE_BYTES = v.ByteSizeValue(GIB, min_value=0, max_value=1024 * TIB)
    PORTAL_FREE_SPACE_RESERVE_BYTES = v.ByteSizeValue(64 * MIB, min_value=0, max_value=1024 * TIB)
    PORTAL_DRAIN_SECONDS = v.FloatValue(
        drain.DEFAULT_SECONDS, min_value=0, max_value=drain.MAX_SECONDS
    )
    PORTAL_DRAIN_FILE = v.AbsolutePathValue("")
    # Trust X-Forwarded-Proto and -For: only behind a proxy that sets them itself.
    PORTAL_BEHIND_PROXY = v.BoolValue(False)
    PORTAL_CORS_ALLOWED_ORIGINS = v.OriginListValue([])
    PORTAL_LOG_FORMAT = v.ChoiceValue("json", choices=FORMATS)
    PORTAL_LOG_LEVEL = v.ChoiceValue("info", choices=LEVELS)

    INSTALLED_APPS = [
        "django.contrib.admin",
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
        "django.contrib.messages",
        "django.contrib.staticfiles",
        "health_check",
        "portal",
    ]
    MIDDLEWARE = [
        "portal.middleware.RequestIdMiddleware",
        "portal.metrics.http.MetricsMiddleware",
        "portal.health.views.ProbeMiddleware",
        "django.middleware.security.SecurityMiddleware",
        # The admin's static files, served by the app: nothing shared with the proxy hosts.
        "whitenoise.middleware.WhiteNoiseMiddleware",
        # tus and CORS headers on every answer under /api/v1/tus, the gate's 503 included.
        "portal.views.tus.TusHeadersMiddleware",
        # Everything below needs the database.
        "portal.dbgate.DatabaseGateMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ]
    ROOT_URLCONF = "boot.urls"
    WSGI_APPLICATION = "boot.wsgi.application"
    TEMPLATES = [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "DIRS": [],
            "APP_DIRS": True,
            "OPTIONS": {
                "context_processors": [
                    "django.template.context_processors.request",
                    "django.contrib.auth.context_processors.auth",
                    "django.contrib.messages.context_processors.messages",
                ]
            },
        }
    ]
    AUTH_PASSWORD_VALIDATORS = [
        {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
        {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    ]
    LANGUAGE_CODE = "en-us"
    TIME_ZONE = "UTC"
    USE_I18N = False
    USE_TZ = True
    STATIC_URL = "static/"
    DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
    # Part bodies are streamed from request.read(); nothing may buffer them whole.
    DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * MIB
    FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * MIB

    @classmethod
    def pre_setup(cls):
        v.PROBLEMS.clear()
        super().pre_setup()

    @classmethod
    def post_setup(cls):
        super().post_setup()
        v.raise_problems()

    # Static files belong to the release, not under PORTAL_DATA_DIR (never written implicitly).
    PORTAL_STATIC_ROOT = v.AbsolutePathValue(str(BASE_DIR / "var" / "static"))
    STATICFILES_BACKEND = "django.contrib.staticfiles.storage.StaticFilesStorage"

    @property
    def STATIC_ROOT(self):
        return self.PORTAL_STATIC_ROOT or None

    @property
    def DATABASES(self):
        url = self.DATABASE_URL or f"sqlite:///{Path(self.PORTAL_DATA_DIR) / 'portal.sqlite3'}"
        database = v.database_from_url(url) or {"ENGINE": "django.db.backends.dummy"}
        options = database.setdefault("OPTIONS", {})
        if database["ENGINE"] == "django.db.backends.postgresql":
            options.setdefault("connect_timeout", self.DATABASE_CONNECT_TIMEOUT_SECONDS)
        if database["ENGINE"] == "django.db.backends.sqlite3":
            # The default must work on a fresh clone.
            _make_database_dir(database["NAME"], "DATABASE_URL" if self.DATABASE_URL else None)
            # Connections persist: closing the last one to a WAL database checkpoints it.
            options.update(
                {
                    "timeout": 20,
                    "transaction_mode": "IMMEDIATE",
                    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                }
            )
        return {"default": database}

    @property
    def STORAGES(self):
        if self.PORTAL_STORAGE == "s3":
            temp, final = self._s3_storage("temp"), self._s3_storage("final")
        else:
            temp, final = self._local_storage("temp"), self._local_storage("final")
        return {
            "default": final,
            "staticfiles": {"BACKEND": self.STATICFILES_BACKEND},
            "portal_temp": temp,
            "portal_final": final,
        }

    def _local_storage(self, prefix):
        return {
            "BACKEND": "portal.storage.LocalStorage",
            "OPTIONS": {
                "location": str(Path(self.PORTAL_DATA_DIR) / prefix),
                "allow_overwrite": True,
            },
        }

    def _s3_storage(self, prefix):
        return {
            "BACKEND": "portal.storage.s3_backend.S3Storage",
            "OPTIONS": {
                "bucket_name": self.AWS_STORAGE_BUCKET_NAME,
                "location": prefix,
                "endpoint_url": self.AWS_S3_ENDPOINT_URL or None,
                "region_name": self.AWS_S3_REGION_NAME,
                "access_key": self.AWS_ACCESS_KEY_ID or None,
                "secret_key": self.AWS_SECRET_ACCESS_KEY or None,
                "file_overwrite": True,
                "transfer_config": _bounded_transfer_config(),
                "default_acl": None,
                "querystring_auth": True,
                "client_config": BotoConfig(
                    connect_timeout=self.AWS_S3_CONNECT_TIMEOUT_SECONDS,
                    read_timeout=self.AWS_S3_READ_TIMEOUT_SECONDS,
                    retries={"max_attempts": self.AWS_S3_MAX_ATTEMPTS, "mode": "standard"},
                    s3={"addressing_style": "path" if self.AWS_S3_ENDPOINT_URL else "auto"},
                    signature_version="s3v4",
                ),
            },
        }

    @property
    def LOGGING(self):
        return build_logging(
            fmt=self.PORTAL_LOG_FORMAT,
            level=self.PORTAL_LOG_LEVEL,
            behind_proxy=self.PORTAL_BEHIND_PROXY,
        )


def _make_database_dir(path, variable):
    if path == ":memory:" or path.startswith("file:"):
        return
    _make_dir(Path(path).parent, variable or "PORTAL_DATA_DIR", what="the database directory")


def _make_dir(path, variable, what="the directory"):
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raw = os.environ.get(variable, "")
        v.PROBLEMS.append(
            f"{variable}={raw!r}: cannot create {what} {str(path)!r} "
            f"({exc.strerror or type(exc).__name__})"
        )


class Dev(Base):
    """Local development: debug pages, readable logs, a fixed insecure key."""

    DEBUG = True
    SECRET_KEY = v.NamedValue("dev-insecure-key-do-not-use-in-production")
    PORTAL_STATIC_ROOT = v.AbsolutePathValue("")
    PORTAL_LOG_FORMAT = v.ChoiceValue("console", choices=FORMATS)

    @classmethod
    def post_setup(cls):
        """A fresh clone just works: create the local storage roots (only here)."""
        super().post_setup()
        if cls.PORTAL_STORAGE == "local":
            for prefix in ("temp", "final"):
                _make_dir(Path(cls.PORTAL_DATA_DIR) / prefix, "PORTAL_DATA_DIR")
            v.raise_problems()


class Test(Base):
    """The test suite: small chunks allowed, fast password hashing, quiet logs, no drain."""

    SECRET_KEY = v.NamedValue("test-insecure-key-do-not-use-in-production")
    PORTAL_STATIC_ROOT = v.AbsolutePathValue("")
    # Off unless a test turns it on: the suite must pass with little free disk.
    PORTAL_MIN_FREE_BYTES = v.ByteSizeValue(0, min_value=0, max_value=1024 * TIB)
    PORTAL_FREE_SPACE_RESERVE_BYTES = v.ByteSizeValue(0, min_value=0, max_value=1024 * TIB)
    PORTAL_CHUNK_SIZE_MIN = v.ByteSizeValue(1, min_value=1)
    PORTAL_LOG_LEVEL = v.ChoiceValue("warning", choices=LEVELS)
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    PORTAL_DRAIN_SECONDS = v.FloatValue(0.0, min_value=0, max_value=drain.MAX_SECONDS)

    @property
    def DATABASES(self):
        databases = super().DATABASES
        default = databases["default"]
        if default["ENGINE"] == "django.db.backends.sqlite3":
            # A file, not :memory:, so subprocesses under test share it; one per test run.
            default["TEST"] = {"NAME": f"{default['NAME']}.test-{os.getpid()}"}
        return databases


class Prod(Base):
    """Production: secrets and database from the environment, HTTPS-only cookies, HSTS."""

    SECRET_KEY = v.NamedValue("", required=True)
    DATABASE_URL = v.NamedValue("", required=True)
    ALLOWED_HOSTS = v.ListValue([], required=True)
    SECURE_SSL_REDIRECT = v.BoolValue(True)
    SECURE_REDIRECT_EXEMPT = list(probe_paths.REDIRECT_EXEMPT)
    SECURE_HSTS_SECONDS = v.IntValue(31536000, min_value=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # Compressed copies made by collectstatic; no manifest needed to start.
    STATICFILES_BACKEND = "whitenoise.storage.CompressedStaticFilesStorage"

    @property
    def SECURE_PROXY_SSL_HEADER(self):
        """Otherwise anyone reaching gunicorn over plain HTTP could claim HTTPS."""
        return ("HTTP_X_FORWARDED_PROTO", "https") if self.PORTAL_BEHIND_PROXY else None
