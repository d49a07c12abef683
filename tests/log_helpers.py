"""Log records the logging tests share: a gunicorn access record, a JSON line through
the redaction filter, and a stand-in for gunicorn's arbiter."""

import json
import logging

from boot.logging import PortalJsonFormatter


def access_record(status, path="/api/v1/files", **atoms):
    values = {
        "s": str(status),
        "U": path,
        "m": "GET",
        "M": 12,
        "B": 345,
        "h": "10.0.0.9",
        "a": "curl/8",
        "{x-portal-drain}o": "-",
        "{x-forwarded-for}i": "-",
        "{x-request-id}o": "-",
        **atoms,
    }
    return logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "%(r)s", (values,), None)


def json_line(record, redacting):
    redacting.filter(record)
    return json.loads(PortalJsonFormatter().format(record))


class Arbiter:
    def __init__(self, tmp_dir):
        self.cfg = type("Cfg", (), {"worker_tmp_dir": str(tmp_dir)})()
        self.stopped = 0
        self.lines = []
        self.log = self
        self.handle_term = self.stop
        self.signal = lambda *args: None

    def stop(self):
        self.stopped += 1

    def info(self, message, *args):
        self.lines.append(("info", message % args))

    def error(self, message, *args):
        self.lines.append(("error", message % args))


def events_named(caplog, name):
    return [r for r in caplog.records if getattr(r, "event", None) == name]
