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
import io
import json
import os
import uuid
from collections import Counter
from urllib.parse import quote

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal import storage
from portal.models import ApiToken, IngestFile, OutboxEvent, UploadPart, UploadSession
from portal.services.tokens import create_token
from tests.api_helpers import BASE, Api

pytestmark = [pytest.mark.reliability, pytest.mark.django_db]

FUZZ = settings(
    max_examples=int(os.environ.get("PORTAL_FUZZ_EXAMPLES", "250")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
GIB = 1024**3

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
            rows[file["storage_key"]] = stored_digest(storage.iter_final(file["storage_key"]))
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


# --- strategies ---------------------------------------------------------------------------

WEIRD_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\t\n",
        "../../etc/passwd",
        "..\\..\\windows\\system32",
        "/absolute/path.bin",
        "a" * 255,
        "a" * 256,
        "é" * 300,
        "x\x00y",
        "\ud800",
        "\u202egnp.exe",
        "\ufeffbom.bin",
        "😀" * 64,
        "名前.bin",
        "e\u0301",
        "con",
        "NUL.txt",
        "%00",
        "%2e%2e%2f",
        "' OR 1=1 --",
        "<script>alert(1)</script>",
        "${jndi:ldap://x}",
        "\x1b[31mred",
    ]
)
ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=()), max_size=300)
TEXT = st.one_of(WEIRD_TEXT, ANY_TEXT)
SIZES = st.one_of(
    st.integers(min_value=-3, max_value=40),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, 2**31, 2**63 - 1, 2**63, 10 * GIB, 10 * GIB + 1, 10**30]),
)
JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), SIZES, st.floats(allow_nan=True, allow_infinity=True), TEXT
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=8,
)
SESSION_SPECS = st.fixed_dictionaries(
    {},
    optional={
        "filename": st.one_of(TEXT, JSON_VALUES),
        "content_type": st.one_of(
            st.sampled_from(["application/pdf", "a/b", "text/plain; charset=utf-8", "/", "x/"]),
            TEXT,
            JSON_VALUES,
        ),
        "size_bytes": st.one_of(SIZES, JSON_VALUES),
        "chunk_size_bytes": st.one_of(SIZES, JSON_VALUES),
        "idempotency_key": st.one_of(st.just("shared-key"), TEXT, JSON_VALUES),
        "extra": JSON_VALUES,
    },
)

# Mostly valid specs, so that creation, idempotency and chunk sizing are reached too.
PLAUSIBLE_SPECS = st.fixed_dictionaries(
    {
        "filename": st.one_of(
            st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=255),
            WEIRD_TEXT,
        ),
        "size_bytes": st.integers(min_value=1, max_value=10 * GIB),
    },
    optional={
        "content_type": st.sampled_from(["application/pdf", "a/b", "x"]),
        "chunk_size_bytes": st.one_of(st.integers(min_value=1, max_value=64 * 1024**2), SIZES),
        "idempotency_key": st.one_of(st.sampled_from(["shared-key", "k1", "k2"]), TEXT),
    },
)


def json_bytes(value, ascii_only):
    text = json.dumps(value, ensure_ascii=ascii_only)
    return text.encode("utf-8", "surrogatepass")


BODIES = st.one_of(
    st.binary(max_size=64),
    st.builds(json_bytes, SESSION_SPECS, st.booleans()),
    st.builds(json_bytes, JSON_VALUES, st.booleans()),
    st.just(b"{" * 50_000),
    st.just(b" " * (64 * 1024 + 1)),
)
METHODS = st.sampled_from(
    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND", "X-Y"]
)
PART_NUMBERS = st.one_of(
    st.integers(min_value=0, max_value=5).map(str),
    st.integers(min_value=0, max_value=10**20).map(str),
    st.sampled_from(["-1", "+1", "1.0", "01", "1e3", "٣", "¹", " 1"]).map(quote),
    TEXT.map(lambda s: quote(s, safe="", errors="surrogatepass")),
)
CONTENT_TYPES = st.one_of(
    st.sampled_from(
        [
            None,
            "application/json",
            "application/octet-stream",
            "multipart/form-data; boundary=x",
            "application/x-www-form-urlencoded",
            "text/plain; charset=utf-16",
        ]
    ),
    st.text(alphabet=st.characters(max_codepoint=255, exclude_categories=("Cc",)), max_size=40),
)
HEADER_TEXT = st.text(alphabet=st.characters(max_codepoint=255), max_size=300)


@st.composite
def session_ids(draw, world):
    return draw(
        st.one_of(
            st.sampled_from(world.own_ids + world.victim_ids),
            st.uuids().map(str),
            st.sampled_from([str(uuid.UUID(int=0)), world.victim_ids[0].upper(), "", "null"]),
            TEXT.map(lambda s: quote(s, safe="", errors="surrogatepass")),
        )
    )


@st.composite
def paths(draw, world):
    sid = draw(session_ids(world))
    path = draw(
        st.sampled_from(
            [
                BASE,
                BASE + "/",
                f"{BASE}/{sid}",
                f"{BASE}/{sid}/parts/{draw(PART_NUMBERS)}",
                f"{BASE}/{sid}/finalize",
                f"{BASE}/{sid}/finalize/",
                "/api/v1/" + draw(TEXT.map(lambda s: quote(s, safe="/", errors="surrogatepass"))),
            ]
        )
    )
    if draw(st.booleans()):
        path += "?" + draw(st.text(max_size=20).map(quote))
    return path


@st.composite
def authorizations(draw, world):
    return draw(
        st.one_of(
            st.just(f"Bearer {world.token}"),
            st.just(f"Bearer {world.token}"),
            st.just(f"bearer   {world.token}  "),
            st.just(f"Bearer {world.revoked}"),
            st.just(None),
            st.sampled_from(["Bearer", "Bearer ", "Basic dXNlcjpwdw==", "Token x", "pt_"]),
            st.just("Bearer " + "x" * 10_000),
            HEADER_TEXT,
            HEADER_TEXT.map(lambda s: "Bearer " + s),
        )
    )


@st.composite
def content_lengths(draw, body):
    """``None``: the true length. Otherwise a header that may lie."""
    return draw(
        st.one_of(
            st.none(),
            st.none(),
            st.sampled_from(["", "abc", "-1", "1e3", " 4", "99999999999999999999999"]),
            st.integers(min_value=0, max_value=len(body) + 8).map(str),
        )
    )


def send(client, method, path, *, body=b"", authorization=None, content_type=None, length=None):
    """A request whose Content-Length may differ from the body (a client that lies or
    breaks off: the server reads what there is, like a closed socket)."""
    headers = {}
    if authorization is not None:
        headers["Authorization"] = authorization
    extra = {"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
    if length is not None:
        extra["CONTENT_LENGTH"] = length
    if content_type is not None:
        extra["CONTENT_TYPE"] = content_type
    return client.generic(method, path, headers=headers, **extra)


def check_answer(response, method):
    """Never a 5xx; a 4xx is a JSON error with a code and a message."""
    STATUSES[response.status_code] += 1
    assert response.status_code < 500, response.content[:500]
    if method == "HEAD":
        return
    if 400 <= response.status_code < 500:
        assert response["Content-Type"] == "application/json", response.content[:300]
        error = json.loads(response.content)["error"]
        assert isinstance(error["code"], str) and error["code"]
        assert isinstance(error["message"], str) and error["message"]
        if response.status_code == 405:
            assert response["Allow"]
    elif response.status_code != 204:
        json.loads(response.content)


COUNTS = {}
STATUSES = Counter()


def count(name):
    COUNTS[name] = COUNTS.get(name, 0) + 1


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


def test_report_example_counts():
    """Not a property: prints how many examples each property ran (for the report)."""
    print(f"\nfuzz examples: {COUNTS}; answers by status: {dict(sorted(STATUSES.items()))}")
