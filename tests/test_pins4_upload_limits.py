"""Pins for the upload area, fourth round (issue #31): ``portal.limits``' bound on the
client's part size, S3's largest single PUT."""

from django.core.management import load_command_class

from tests.commands import usage_error

S3_LARGEST_PUT = 5 * 1024**3


def parsed_options(*argv):
    command = load_command_class("portal", "portal_upload")
    return vars(command.create_parser("manage.py", "portal_upload").parse_args(argv))


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
