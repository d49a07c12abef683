"""Bad input: property-based fuzzing of the upload API through Django's test client.

Hypothesis draws whole requests: the method (standard and made up), the path (every
endpoint, session ids that are the client's own, another owner's, unknown, malformed or
weird text, part numbers from zero to 10**20 or text), the headers (tokens that are
missing, malformed, revoked, overlong; content types; request ids; a ``Content-Length``
that is missing, not a number, negative, shorter or longer than the body), and the body
(random bytes, JSON of any shape, session specs with hostile filenames, sizes, chunk
sizes and idempotency keys). A second property aims at the part upload of an open
session, where bytes reach storage.

Every answer must be below 500; every 4xx must be a JSON ``{"error": {"code",
"message"}}``. After every example, another owner's sessions, files, parts, outbox
events and stored objects must be exactly as before: nothing a client sends can touch
someone else's upload. ``PORTAL_FUZZ_EXAMPLES`` (default 250 per property) searches
deeper.
"""

import hashlib
import os

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal import storage
from portal.models import ApiToken, IngestFile, OutboxEvent, UploadPart, UploadSession
from portal.services.tokens import create_token
from tests.api_helpers import BASE, Api
from tests.objects import iter_final
from tests.reliability.fuzz_strategies import (
    BODIES,
    CONTENT_TYPES,
    METHODS,
    PLAUSIBLE_SPECS,
    SESSION_SPECS,
    STATUSES,
    authorizations,
    check_answer,
    content_lengths,
    json_bytes,
    paths,
    send,
)

pytestmark = [pytest.mark.reliability, pytest.mark.django_db]

FUZZ = settings(
    max_examples=int(os.environ.get("PORTAL_FUZZ_EXAMPLES", "250")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- the world: a victim with sessions in every state, and the fuzzing client ----------


def stored_digest(chunks):
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def snapshot(owner, *, objects=True):
    """Everything of ``owner``'s uploads: rows, and the bytes of every object they name."""
    sessions = list(UploadSession.objects.filter(owner=owner).order_by("id").values())
    files = list(IngestFile.objects.filter(uploaded_by=owner).order_by("id").values())
    parts = list(UploadPart.objects.filter(session__owner=owner).order_by("id").values())
    events = list(
        OutboxEvent.objects.filter(aggregate_id__in=[str(f["id"]) for f in files])
        .order_by("id")
        .values()
    )
    rows = {"sessions": sessions, "files": files, "parts": parts, "events": events}
    if not objects:
        return rows
    for part in parts:
        rows[part["temp_key"]] = stored_digest(storage.iter_temp(part["temp_key"]))
    for file in files:
        if file["storage_key"]:
            rows[file["storage_key"]] = stored_digest(iter_final(file["storage_key"]))
    return rows


class World:
    """The victim's sessions (every state) and the fuzzer's own sessions and tokens."""

    def __init__(self, client, user, other_user):
        self.victim = other_user
        victim = Api(client, create_token(other_user)[1])
        open_ = victim.start(b"0123456789", 4, idempotency_key="shared-key")
        victim.upload(open_["id"], b"01234567", 4)  # parts 1 and 2 of 3
        done = victim.start(b"complete!", 4, filename="done.bin")
        victim.upload(done["id"], b"complete!", 4)
        assert victim.finalize(done["id"]).status_code == 200
        aborted = victim.start(b"aborted", 4)
        victim.upload(aborted["id"], b"abor", 4, order=[1])
        assert victim.abort(aborted["id"]).status_code == 204
        fresh = victim.start(b"x" * 10, 4, filename="init.bin")
        self.victim_ids = [open_["id"], done["id"], aborted["id"], fresh["id"]]

        self.token = create_token(user)[1]
        revoked, self.revoked = create_token(user)
        ApiToken.objects.filter(pk=revoked.pk).update(is_active=False)
        self.me = Api(client, self.token)
        self.own_ids = [self.me.start(b"y" * 10, 4)["id"] for _ in range(3)]
        self.before = snapshot(self.victim)
        self.before_rows = snapshot(self.victim, objects=False)
        self.examples = 0

    def open_session(self):
        """One of the fuzzer's own sessions that still takes parts (a new one if none)."""
        sid = (
            UploadSession.objects.filter(
                id__in=self.own_ids, status__in=UploadSession.OPEN_STATUSES
            )
            .values_list("id", flat=True)
            .first()
        )
        if sid is None:
            self.own_ids.append(self.me.start(b"y" * 10, 4)["id"])
            return self.own_ids[-1]
        return str(sid)

    def unchanged(self):
        """The rows after every example; the objects too after every 5th and at the end
        (objects are named only by rows, and reading them is what makes S3 slow)."""
        self.examples += 1
        with_objects = self.examples % 5 == 0
        after = snapshot(self.victim, objects=with_objects)
        assert after == (self.before if with_objects else self.before_rows)


@pytest.fixture
def world(client, user, other_user, portal_storage):
    world = World(client, user, other_user)
    yield world
    assert snapshot(world.victim) == world.before


COUNTS = {}


def count(name):
    COUNTS[name] = COUNTS.get(name, 0) + 1


@pytest.fixture(scope="module", autouse=True)
def report_example_counts():
    """After the module: how many examples each property ran (visible with ``-s``)."""
    yield
    print(f"\nfuzz examples: {COUNTS}; answers by status: {dict(sorted(STATUSES.items()))}")


# --- properties ---------------------------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_any_request_gets_a_clean_answer_and_leaves_other_owners_alone(world, data):
    count("any_request")
    method = data.draw(METHODS, label="method")
    path = data.draw(paths(world), label="path")
    body = data.draw(BODIES, label="body")
    response = send(
        Client(),
        method,
        path,
        body=body,
        authorization=data.draw(authorizations(world), label="authorization"),
        content_type=data.draw(CONTENT_TYPES, label="content_type"),
        length=data.draw(content_lengths(body), label="content_length"),
    )
    check_answer(response, method)
    world.unchanged()


@FUZZ
@given(data=st.data())
def test_session_specs_are_validated_and_never_touch_other_owners(world, data):
    count("session_spec")
    spec = data.draw(st.one_of(SESSION_SPECS, PLAUSIBLE_SPECS), label="spec")
    body = json_bytes(spec, data.draw(st.booleans(), label="ascii"))
    response = send(
        Client(),
        "POST",
        BASE,
        body=body,
        authorization=f"Bearer {world.token}",
        content_type="application/json",
    )
    check_answer(response, "POST")
    if response.status_code in (200, 201):
        session = response.json()
        assert session["id"] not in world.victim_ids
        assert session["chunk_size_bytes"] >= 1 and 1 <= session["total_parts"] <= 100_000
    world.unchanged()


@FUZZ
@given(data=st.data())
def test_part_uploads_to_an_open_session_never_fail_the_server(world, data):
    count("part_upload")
    # Mostly an open session of the fuzzer's; sometimes the victim's open one (always 404).
    sid = data.draw(
        st.sampled_from([world.open_session()] * 4 + world.victim_ids[:1]), label="session"
    )
    number = data.draw(st.integers(min_value=-1, max_value=5), label="part_number")
    body = data.draw(
        st.one_of(st.binary(max_size=10), st.sampled_from([b"yyyy", b"yy", b"zzzz"])), label="body"
    )
    response = send(
        Client(),
        "PUT",
        f"{BASE}/{sid}/parts/{number}",
        body=body,
        authorization=f"Bearer {world.token}",
        content_type="application/octet-stream",
        length=data.draw(content_lengths(body), label="content_length"),
    )
    check_answer(response, "PUT")
    if sid in world.victim_ids:
        assert response.status_code == 404, response.content
    if data.draw(st.booleans(), label="then finalize"):
        check_answer(
            send(Client(), "POST", f"{BASE}/{sid}/finalize", authorization=f"Bearer {world.token}"),
            "POST",
        )
    world.unchanged()
