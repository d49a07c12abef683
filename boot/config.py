"""django-configurations values that name the environment variable when a value is bad.

The library stops at the first bad value with ``Cannot interpret value 'abc'``; an operator
needs every problem at once, each as ``VARIABLE='value': rule``. So the values record them
in ``PROBLEMS`` and ``Base.post_setup`` raises one ``SettingsError`` listing them all.
Cross-field rules are system checks (``portal.checks``).
"""

import os
import re

import dj_database_url
from configurations import values
from django.core.exceptions import ImproperlyConfigured

from portal.httpclient import http_url_problem

PROBLEMS: list[str] = []
# What DJANGO_CONFIGURATION may name (manage.py checks it, sparing a traceback).
CONFIGURATIONS = ("Dev", "Test", "Prod")

_SIZE_UNITS = {"": 1, "b": 1} | {
    prefix + suffix: base**power
    for power, prefix in enumerate("kmgt", start=1)
    for suffix, base in (("", 1000), ("b", 1000), ("ib", 1024))
}
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([a-zA-Z]*)\s*$", re.ASCII)


class SettingsError(ImproperlyConfigured):
    """``str()`` lists each problem on its own line."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

    def __str__(self):
        return "\n".join(f"  - {p}" for p in self.problems)


class Invalid(ValueError):
    """The rule that the raw value broke."""


class NamedValue(values.Value):
    """A value read from the environment variable of the setting's own name (no prefix)."""

    def __init__(self, *args, required=False, **kwargs):
        kwargs.setdefault("environ_prefix", None)
        self.required = required
        super().__init__(*args, **kwargs)

    def setup(self, name):
        variable = self.full_environ_name(name)
        try:
            value = super().setup(name)
        except Invalid as exc:
            raw = _shorten(self.shown(os.environ.get(variable, "")))
            PROBLEMS.append(f"{variable}={raw!r}: {exc}")
            self.value = value = self.default
        if self.required and not value:
            PROBLEMS.append(f"{variable}: required in this configuration, but not set")
        return value

    def to_python(self, value):
        value = value.strip()
        if value and (problem := self.problem(value)):
            raise Invalid(problem)
        return value

    def problem(self, value):
        """The rule that a non-empty ``value`` breaks, if any."""
        return None

    def shown(self, raw):
        return raw


class BoundedValue(NamedValue):
    """A number with bounds: the upper one keeps absurd values (``10**30``, ``1e9`` hours)
    from overflowing a database column or ``datetime`` arithmetic at run time."""

    def __init__(self, *args, min_value=None, max_value=None, **kwargs):
        self.min_value = min_value
        self.max_value = max_value
        super().__init__(*args, **kwargs)

    def bounded(self, number):
        if self.min_value is not None and number < self.min_value:
            raise Invalid(f"must be at least {self.min_value}")
        if self.max_value is not None and number > self.max_value:
            raise Invalid(f"must be at most {self.max_value}")
        return number


class IntValue(BoundedValue):
    def to_python(self, value):
        try:
            number = int(_ascii(value).strip())
        except ValueError:
            raise Invalid("must be a whole number") from None
        return self.bounded(number)


class FloatValue(BoundedValue):
    """A finite number, above zero unless ``min_value`` says otherwise."""

    def __init__(self, *args, min_value=0.001, **kwargs):
        super().__init__(*args, min_value=min_value, **kwargs)

    def to_python(self, value):
        try:
            number = float(_ascii(value).strip())
        except ValueError:
            raise Invalid("must be a number") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise Invalid("must be a finite number")
        return self.bounded(number)


class ByteSizeValue(IntValue):
    """A size in bytes: ``8388608``, ``8MiB``, ``5GB`` (units k/M/G/T, decimal or binary)."""

    def to_python(self, value):
        match = _SIZE_RE.match(value)
        unit = match.group(2).lower() if match else None
        if unit not in _SIZE_UNITS:
            raise Invalid("must be a size in bytes such as 8388608, 8MiB or 5GB")
        return self.bounded(int(match.group(1)) * _SIZE_UNITS[unit])


class ChoiceValue(NamedValue):
    def __init__(self, *args, choices=(), **kwargs):
        self.choices = tuple(choices)
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        word = value.strip().lower()
        if word not in self.choices:
            raise Invalid(f"must be one of {', '.join(self.choices)}")
        return word


class PatternValue(NamedValue):
    """Text that must match ``pattern`` whole (or be empty), e.g. an S3 bucket name."""

    def __init__(self, *args, pattern, rule, **kwargs):
        self.pattern = re.compile(pattern)
        self.rule = rule
        super().__init__(*args, **kwargs)

    def problem(self, value):
        return None if self.pattern.fullmatch(value) else self.rule


class BoolValue(NamedValue):
    def to_python(self, value):
        word = value.strip().lower()
        if word in ("1", "true", "yes", "on", "y"):
            return True
        if word in ("0", "false", "no", "off", "n", ""):
            return False
        raise Invalid("must be true or false")


class HttpUrlValue(NamedValue):
    def shown(self, raw):
        """Never a password in an error message: ``https://user:***@host/…``."""
        return re.sub(r"(//[^/@:]*:)[^/@]*@", r"\1***@", raw)

    def problem(self, value):
        return http_url_problem(value)


class AbsolutePathValue(NamedValue):
    """An absolute file system path, or empty (a relative one would depend on the cwd)."""

    def problem(self, value):
        return None if value.startswith("/") else "must be an absolute path (starting with /)"


class ListValue(NamedValue):
    def to_python(self, value):
        return [item.strip() for item in value.split(",") if item.strip()]


_ORIGIN = re.compile(r"https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?", re.ASCII)


class OriginListValue(ListValue):
    """Web origins as a browser sends them in ``Origin``: no path, slash or wildcard."""

    def to_python(self, value):
        origins = [origin.lower() for origin in super().to_python(value)]
        for origin in origins:
            match = _ORIGIN.fullmatch(origin)
            if not match or not 0 < int((match[2] or ":80")[1:]) < 65536:
                raise Invalid(
                    f"{_shorten(origin)!r} is not an origin: use scheme://host[:port] "
                    "(http or https, no path, no wildcard), comma-separated"
                )
        return origins


SUPPORTED_ENGINES = ("django.db.backends.sqlite3", "django.db.backends.postgresql")
DATABASE_URL_HINT = "use sqlite:///path/to/db.sqlite3 or postgres://user@host:5432/name"


# A port of 0 after a host, before the path: no server listens there, and connecting to
# the default port instead would reach another database than the operator named.
PORT_ZERO = re.compile(r"^[^/]*//[^/]*:0+(?:/|$)")


def database_from_url(url, *, conn_max_age=60):
    """``DATABASE_URL`` as Django's dict, or None with a problem that names the scheme,
    never the URL (it may hold a password)."""
    try:
        if PORT_ZERO.search(url.split("?", 1)[0]):  # dj_database_url reads it as no port
            raise ValueError("port")
        config = dj_database_url.parse(url, conn_max_age=conn_max_age, conn_health_checks=True)
        port = config.get("PORT")
        if port not in (None, "") and not 0 < int(port) < 65536:
            raise ValueError("port")
    except (ValueError, KeyError, TypeError) as exc:
        problem = f"cannot be parsed ({type(exc).__name__})"
    else:
        if config.get("ENGINE") in SUPPORTED_ENGINES:
            return config
        problem = "not a supported database"
    scheme = url.split(":", 1)[0][:20]
    PROBLEMS.append(f"DATABASE_URL (scheme {scheme!r}): {problem}; {DATABASE_URL_HINT}")
    return None


def from_environ(value, name, environ=None):
    """``value``'s reading of the variable ``name``, or its default when unset or invalid.

    For gunicorn's master, which must not load the settings; the workers do, and report
    an invalid value.
    """
    environ = os.environ if environ is None else environ
    raw = environ.get(name)
    if raw is None:
        return value.default
    try:
        return value.to_python(raw)
    except Invalid:
        return value.default


def raise_problems():
    """Raise ``SettingsError`` with every recorded problem, if any, and forget them."""
    if PROBLEMS:
        problems = list(PROBLEMS)
        PROBLEMS.clear()
        raise SettingsError(problems)


def _ascii(value):
    """``value`` if it is ASCII: Python reads Devanagari or fullwidth digits as numbers,
    an operator would not mean them."""
    if not value.isascii():
        raise ValueError(value)
    return value


def _shorten(raw, limit=60):
    return raw if len(raw) <= limit else raw[:limit] + "…"
