"""Pins for ``portal.limits``, sixth round (issue #31): each bound the commands' options
take is inclusive, and one more is a usage error naming the option."""

import pytest
from django.core.management import load_command_class

from tests.commands import usage_error

UPLOAD = ("portal_upload", "f", "--url", "http://p/")


def parsed(name, *argv):
    command = load_command_class("portal", name)
    return vars(command.create_parser("manage.py", name).parse_args(argv))


@pytest.mark.parametrize(
    ("command", "option", "largest", "too_large", "key"),
    [
        (UPLOAD, "--parallel", "64", "65", "parallel"),
        (UPLOAD, "--retries", "100", "101", "retries"),
        (UPLOAD, "--timeout", "86400", "86400.5", "timeout"),
        (UPLOAD, "--finalize-wait", "86400", "86401", "finalize_wait"),
        (("portal_cleanup",), "--max-seconds", "86400", "86400.001", "max_seconds"),
        (("portal_dispatch",), "--max-seconds", "86400", "86401", "max_seconds"),
    ],
)
def test_each_option_takes_its_bound_and_refuses_one_more(command, option, largest, too_large, key):
    """64 parts in flight, 100 retries, a day for a request, a wait or a job run: the
    bound itself is taken, a value past it refused before anything runs."""
    name, *head = command
    assert parsed(name, *head, option, largest)[key] == float(largest)

    code, err = usage_error(name, *head, option, too_large)

    assert code == 2
    assert f"argument {option}: {too_large!r} is not" in err
