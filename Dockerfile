# The portal's image: gunicorn with gunicorn.conf.py by default; the jobs run from the same
# image (`python manage.py portal_cleanup --json …`). Build, run, volumes and the required
# environment: docs/operations.md, "Run it in containers".
#
#   docker build -t portal .
#
# BASE_IMAGE: any Debian-like image with python3 (3.11+) and the venv module; both stages
# must use the same one (the virtualenv points at its interpreter). PIP_NO_INDEX and
# PIP_FIND_LINKS (optional) install from a directory of wheels instead of PyPI.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ARG PIP_NO_INDEX
ARG PIP_FIND_LINKS
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
# pip and setuptools are for building only: nothing at run time imports them.
RUN /opt/venv/bin/pip install -r /tmp/requirements.txt \
 && /opt/venv/bin/pip uninstall --yes --quiet pip setuptools
WORKDIR /srv/portal
COPY . .
# Static files at build time: the settings need a database URL and a key to load, and
# collectstatic uses neither. Bytecode compiled now: the root filesystem is read-only.
RUN DJANGO_CONFIGURATION=Prod SECRET_KEY=collectstatic-only ALLOWED_HOSTS=localhost \
      DATABASE_URL=sqlite:////tmp/collectstatic.sqlite3 PORTAL_STATIC_ROOT=/srv/portal/static \
      /opt/venv/bin/python manage.py collectstatic --no-input --verbosity 0 \
 && /opt/venv/bin/python -m compileall -q -j 0 /srv/portal

FROM ${BASE_IMAGE}
# The user the app runs as: numeric, so the orchestrator can check runAsNonRoot. The app
# and the virtualenv belong to root: the app cannot change its own code.
RUN groupadd --system --gid 10001 portal \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin portal \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/portal /var/lib/portal/temp /var/lib/portal/final
COPY --from=build /opt/venv /opt/venv
COPY --from=build /srv/portal /srv/portal
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_CONFIGURATION=Prod \
    PORTAL_DATA_DIR=/var/lib/portal \
    PORTAL_STATIC_ROOT=/srv/portal/static \
    HOST=0.0.0.0 \
    PORT=8000 \
    MALLOC_ARENA_MAX=2 \
    MALLOC_MMAP_THRESHOLD_=1048576
WORKDIR /srv/portal
USER 10001:10001
EXPOSE 8000
# gunicorn.conf.py: SIGTERM drains (/ready 503 for PORTAL_DRAIN_SECONDS), then stops
# gracefully; the orchestrator's grace period must cover both.
STOPSIGNAL SIGTERM
CMD ["gunicorn", "-c", "gunicorn.conf.py"]
