"""Area catalog ``tus`` (issue #31, pinning campaign): careless slips in tus 1.0, function by
function -- ``portal/services/tus.py``, ``tus_patch.py``, ``tus_stream.py``;
its HTTP side (the view, CORS, the URLs, ``portal/request_body.py``) is in
``tests/mutant_area_tus_http.py``. Same rules as ``tests/mutant_catalog.py``; every entry is
killed by the files it names (most by ``tests/test_pins_tus.py``)."""

from tests.mutant_catalog import Mutant

_API = "tests/test_tus_api.py"
_EDGES = "tests/test_tus_edges.py"
_PORTAL = "tests/test_tus_portal.py"
_PINS = "tests/test_pins_tus.py"
_TUS = "portal/services/tus.py"
_PATCH = "portal/services/tus_patch.py"
_STREAM = "portal/services/tus_stream.py"


def _m(name, path, old, new, *tests):
    return Mutant(f"tus: {name}", path, ((old, new),), tests or (_PINS,))


MUTANTS = (
    # --- portal/services/tus.py: versions, headers, metadata
    _m(
        "any Tus-Resumable is spoken",
        _TUS,
        "    if value != TUS_VERSION:\n",
        "    if value is None:\n",
        _API,
    ),
    _m(
        "an Upload-Metadata of blanks is parsed as pairs",
        _TUS,
        "if header is None or not header.strip():",
        "if header is None or not header:",
    ),
    _m(
        "Upload-Metadata of exactly the most characters is refused",
        _TUS,
        "if len(header) > MAX_METADATA_CHARS:",
        "if len(header) >= MAX_METADATA_CHARS:",
    ),
    _m(
        "Upload-Metadata of any length is taken",
        _TUS,
        "if len(header) > MAX_METADATA_CHARS:",
        "if False:",
    ),
    _m(
        "a metadata key without a value is refused",
        _TUS,
        'if not _METADATA_KEY.fullmatch(key) or " " in value.strip():',
        "if not _METADATA_KEY.fullmatch(key) or not value.strip():",
    ),
    _m(
        "a metadata key named twice is taken (the last wins)",
        _TUS,
        "        if key in pairs:\n",
        "        if False:\n",
        _API,
    ),
    _m(
        "metadata values are decoded leniently (junk characters dropped)",
        _TUS,
        "pairs[key] = base64.b64decode(value.strip(), validate=True)",
        "pairs[key] = base64.b64decode(value.strip())",
    ),
    _m(
        "a non-ASCII metadata value is a 500",
        _TUS,
        "        except (binascii.Error, ValueError):\n            raise _bad_metadata(",
        "        except binascii.Error:\n            raise _bad_metadata(",
    ),
    _m(
        "uppy's 'name' wins over tus's 'filename'",
        _TUS,
        'FILENAME_KEYS = ("filename", "name")',
        'FILENAME_KEYS = ("name", "filename")',
    ),
    _m(
        "uppy's 'type' is not read",
        _TUS,
        'FILETYPE_KEYS = ("filetype", "type")',
        'FILETYPE_KEYS = ("filetype",)',
        _API,
    ),
    _m(
        "a file without a filename is named ''",
        _TUS,
        'DEFAULT_FILENAME = "upload"',
        'DEFAULT_FILENAME = "file"',
        _API,
    ),
    _m(
        "an empty integer header is called invalid, not missing",
        _TUS,
        '    if value is None or value == "":\n',
        "    if value is None:\n",
    ),
    _m(
        "an integer header of 20 digits is taken",
        _TUS,
        '_DIGITS = re.compile(r"[0-9]{1,19}", re.ASCII)',
        '_DIGITS = re.compile(r"[0-9]{1,20}", re.ASCII)',
    ),
    _m(
        "an integer header of 19 digits is refused",
        _TUS,
        '_DIGITS = re.compile(r"[0-9]{1,19}", re.ASCII)',
        '_DIGITS = re.compile(r"[0-9]{1,18}", re.ASCII)',
    ),
    _m(
        "an empty Upload-Checksum is no checksum",
        _TUS,
        "    if header is None:\n        return None\n    algorithm,",
        "    if not header:\n        return None\n    algorithm,",
    ),
    _m(
        "a checksum digest of the wrong size is taken",
        _TUS,
        "    if len(digest) != hasher.digest_size:\n",
        "    if not digest:\n",
        _PORTAL,
    ),
    _m(
        "the metadata's sha256 may have more than 64 hex digits",
        _TUS,
        "if expected and not _SHA256_HEX.fullmatch(expected):",
        "if expected and not _SHA256_HEX.match(expected):",
    ),
    _m(
        "the metadata's sha256 in capitals never matches",
        _TUS,
        "sha256=expected.lower()",
        "sha256=expected",
        _API,
    ),
    _m(
        "Upload-Defer-Length is ignored",
        _TUS,
        "    if defer_length is not None:\n",
        "    if defer_length is not None and length is None:\n",
    ),
    # --- portal/services/tus.py: lookup, offset, HEAD, DELETE
    _m(
        "another owner's upload is found",
        _TUS,
        "pk=upload_pk(upload_id), session__owner=owner",
        "pk=upload_pk(upload_id)",
        _API,
    ),
    _m(
        "a complete upload is gone (410) to HEAD",
        _TUS,
        "    if session.status not in (Status.FINALIZING, Status.COMPLETE):\n",
        "    if session.status not in (Status.FINALIZING,):\n",
    ),
    _m(
        "the offset counts parts past a missing one",
        _TUS,
        "if number != done + 1),",
        "if number < done + 1),",
    ),
    _m(
        "the offset of parts with a gap is their count",
        _TUS,
        '    if totals["count"] == (totals["last"] or 0):\n',
        "    if True:\n",
    ),
    _m(
        "HEAD of a complete upload still names an expiry",
        _TUS,
        "expires = session.expires_at if session.status in UploadSession.OPEN_STATUSES else None",
        "expires = session.expires_at",
    ),
    _m(
        "HEAD does not finalize an upload whose bytes are all in",
        _TUS,
        "if session.status in UploadSession.OPEN_STATUSES and offset == session.total_size_bytes:",
        "if False:",
        _PORTAL,
    ),
    _m(
        "DELETE leaves the tail's row pointing at the deleted object",
        _TUS,
        '            tail_key="", tail_bytes=0, tail_part=0, tail_sha256=""\n',
        '            tail_bytes=0, tail_part=0, tail_sha256=""\n',
    ),
    _m(
        "DELETE of an upload without a tail deletes an empty key",
        _TUS,
        "    if tus.tail_key:\n        with storage_faults(",
        "    if True:\n        with storage_faults(",
    ),
    # --- portal/services/tus_patch.py
    _m(
        "a PATCH exactly to the upload's length is 413",
        _PATCH,
        "    if offset + length > session.total_size_bytes:\n",
        "    if offset + length >= session.total_size_bytes:\n",
        _API,
    ),
    _m(
        "a broken body's offset counts the bytes announced",
        _PATCH,
        "offset += body.taken if not checked else",
        "offset += length if not checked else",
        _EDGES,
    ),
    _m(
        "without saved states the file hash is not read back for the last PATCH",
        _PATCH,
        "    if not saving and offset + length < session.total_size_bytes:\n",
        "    if not saving and offset + length <= session.total_size_bytes:\n",
    ),
    _m(
        "without saved states no file hash is kept at all",
        _PATCH,
        "    if not saving and offset + length < session.total_size_bytes:\n",
        "    if not saving:\n",
    ),
    _m(
        "a read-back file hash leaves out the tail",
        _PATCH,
        "tus.tail_bytes):\n            digest.update(chunk)",
        "tus.tail_bytes):\n            pass",
    ),
    _m(
        "a read-back file hash takes a part past the contiguous ones",
        _PATCH,
        "part_rows(session.pk)[:done]:",
        "part_rows(session.pk):",
    ),
    _m(
        "parts are recorded only at the end of the PATCH",
        _PATCH,
        "                if not self.deferred:\n                    self._record()\n",
        "",
        _PORTAL,
    ),
    _m(
        "a body that broke off at a part's start leaves an empty tail",
        _PATCH,
        "            if place is None and source.taken:\n",
        "            if place is None:\n",
    ),
    _m(
        "a body with a checksum that broke off is checked as if whole",
        _PATCH,
        "        if body.broken:\n            raise BadRequest(",
        "        if False:\n            raise BadRequest(",
    ),
    _m(
        "the Upload-Checksum is not compared",
        _PATCH,
        "        if not hmac.compare_digest(hasher.digest(), digest):\n",
        "        if False:\n",
        _API,
    ),
    _m(
        "a replaced tail stays in temp storage",
        _PATCH,
        "                storage.delete_temp([old_tail])\n",
        "                pass\n",
    ),
    _m(
        "a refused PATCH keeps its new tail object",
        _PATCH,
        "(storage.StorageUnavailable):\n                storage.delete_temp([tail[1].key])",
        "(storage.StorageUnavailable):\n                pass",
    ),
    _m(
        "a refused PATCH keeps its written parts' objects",
        _PATCH,
        "            with held, contextlib.suppress(storage.StorageUnavailable):\n"
        "                chunks.discard(stored, place)",
        "            with held, contextlib.suppress(storage.StorageUnavailable):\n"
        "                pass",
    ),
    _m(
        "the file hash is not saved with the tus row",
        _PATCH,
        "fields.update(hash_state=self.file_hash.state(), hashed_bytes=self.file_hash.length)",
        "pass",
    ),
    _m(
        "the file's sha256 is checked only when the last part comes alone",
        _PATCH,
        "not any(entry[0] == last for entry in self.pending)",
        "[entry[0] for entry in self.pending] != [last]",
    ),
    _m(
        "a storage outage during a PATCH is logged without the upload's id",
        _PATCH,
        'with storage_faults("storing a tus PATCH", **context):',
        'with storage_faults("storing a tus PATCH"):',
    ),
    _m(
        "a lost tail leaves its row pointing at it",
        _PATCH,
        "            self._forget_tail()\n",
        "",
        _EDGES,
    ),
    # --- portal/services/tus_stream.py
    _m(
        "a tail gone from storage is a 500",
        _STREAM,
        "    except FileNotFoundError:\n        raise TailMissing(key) from None",
        "    except KeyError:\n        raise TailMissing(key) from None",
    ),
    _m(
        "a tail longer in storage than recorded gives all its bytes",
        _STREAM,
        "            yield chunk[:left]\n",
        "            yield chunk\n",
    ),
    _m(
        "a body that broke off says nothing of why",
        _STREAM,
        "            return self._broke(type(exc).__name__, 0)",
        '            return self._broke("", 0)',
    ),
    _m(
        "a body cut short by the socket is a 500",
        _STREAM,
        "        except OSError as exc:\n            return self._broke(type(exc).__name__, 0)",
        "        except ConnectionError as exc:\n"
        "            return self._broke(type(exc).__name__, 0)",
        _EDGES,
    ),
)
