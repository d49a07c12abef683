"""Pins for the upload area, fourth round (issue #31): ``portal.limits``' bound on the
client's part size (S3's largest single PUT) and ``portal_dispatch --limit``'s bound."""

from django.core.management import load_command_class

from tests.commands import usage_error

S3_LARGEST_PUT = 5 * 1024**3


def parsed_options(*argv, name="portal_upload"):
    command = load_command_class("portal", name)
    return vars(command.create_parser("manage.py", name).parse_args(argv))


def test_a_chunk_size_up_to_s3s_largest_put_is_accepted_and_one_byte_more_refused(upload_file):
    """An operator may ask for parts as large as S3 takes in one PUT (5 GiB), not larger:
    a wrong bound refuses every size or lets the server reject each part later."""
    largest = str(S3_LARGEST_PUT)
    options = parsed_options(str(upload_file), "--url", "http://p/", "--chunk-size", largest)
    assert options["chunk_size"] == S3_LARGEST_PUT

    code, err = usage_error(
        "portal_upload",
        str(upload_file),
        "--url",
        "http://p/",
        "--chunk-size",
        str(S3_LARGEST_PUT + 1),
    )
    assert code == 2 and "--chunk-size" in err


def test_a_dispatch_limit_of_ten_million_is_accepted_and_one_more_refused():
    """``portal_dispatch --limit`` takes up to 10,000,000 jobs a run, not one more: an
    operator's absurd value fails as a usage error naming the option."""
    assert parsed_options("--limit", "10000000", name="portal_dispatch")["limit"] == 10_000_000
    code, err = usage_error("portal_dispatch", "--limit", "10000001")
    assert code == 2 and "--limit" in err
