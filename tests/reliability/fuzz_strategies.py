"""What the fuzz tests draw: hostile text, JSON of any shape, session specs, paths,
authorizations, content lengths; and ``send``/``check_answer`` for one request."""

import io
import json
import uuid
from collections import Counter
from urllib.parse import quote

from hypothesis import strategies as st

from tests.api_helpers import BASE

GIB = 1024**3
# Answers by status over the whole module (the test module prints them at its end).
STATUSES = Counter()

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
