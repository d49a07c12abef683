"""Storage selection for a test: the environment variables that choose local disk or S3,
and the settings one test runs with (here, not in conftest.py, so that the fixtures
conftest.py imports may use them)."""

from pathlib import Path


def storage_env(kind, data_dir, *, s3=None, bucket=None):
    """Environment variables that select ``kind`` storage (for settings and subprocesses)."""
    env = {"PORTAL_DATA_DIR": str(data_dir), "PORTAL_STORAGE": kind}
    if kind == "s3":
        env.update(
            {
                "AWS_STORAGE_BUCKET_NAME": bucket,
                "AWS_S3_ENDPOINT_URL": s3.endpoint,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_S3_REGION_NAME": "us-east-1",
            }
        )
    return env


def apply_storage(settings, kind, data_dir, *, s3=None, bucket=None):
    """Point the ``portal_temp``/``portal_final`` aliases at ``kind`` storage for one test."""
    from boot.settings import Base

    env = storage_env(kind, data_dir, s3=s3, bucket=bucket)
    config = Base()
    for name, value in env.items():
        setattr(config, name, value)
    config.AWS_S3_CONNECT_TIMEOUT_SECONDS = 1.0
    config.AWS_S3_READ_TIMEOUT_SECONDS = 5.0
    config.AWS_S3_MAX_ATTEMPTS = 1
    config.AWS_S3_REGION_NAME = "us-east-1"
    settings.PORTAL_DATA_DIR = str(data_dir)
    settings.PORTAL_STORAGE = kind
    settings.AWS_STORAGE_BUCKET_NAME = bucket or ""
    settings.AWS_S3_ENDPOINT_URL = s3.endpoint if s3 else ""
    settings.STORAGES = config.STORAGES
    if kind == "local":
        # The operator's install step: local storage never creates its own roots.
        for prefix in ("temp", "final"):
            (Path(data_dir) / prefix).mkdir(parents=True, exist_ok=True)
    return env
