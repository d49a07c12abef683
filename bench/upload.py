"""Benchmark: upload and finalize a large file through a live gunicorn, against a floor.

    .venv/bin/python bench/upload.py [--size-mib 1024] [--parallel 4] [--keep]
    .venv/bin/python bench/upload.py --storage s3 [--size-mib 1024]

Sets up a throwaway installation in a temp directory (Prod configuration, SQLite,
migrated), creates a token with ``portal_create_token``, starts gunicorn with the
project's ``gunicorn.conf.py`` on a free port, uploads a file of ``--size-mib`` random
bytes in 8 MiB parts over a few parallel keep-alive connections, then finalizes (polling
``GET`` while finalize answers 202).

Local storage: the floor, in the same run, is ``cat`` of the same part files through
``tee`` into one file and ``sha256sum`` (read, write and one hash: what finalize must do at
least). Prints upload and finalize MB/s, finalize/floor (target >= 0.6) and the server's
peak RSS (target < 150 MB).

S3 (a moto server in its own process on loopback): the same file is finalized twice in
the same run, once by today's path (S3 builds the object with UploadPartCopy, checked by
the copies' ETags; the file's sha256 saved while the parts arrived, parts that came
before their turn read back during the upload) and once by the streaming path
(``PORTAL_S3_COPY_ASSEMBLY=false``: every byte read from and written back to S3 through
the worker). Prints both times (target: the copy path >= 2x faster), the bytes the worker
read and wrote meanwhile (target: at most one file read, none written), its peak RSS
(target < 150 MB) and the longest finalize request (target <= PORTAL_FINALIZE_WAIT_SECONDS
+ 1 s). Then moto's own share, timed from the bench's client on the same parts: the
copies and CompleteMultipartUpload, against GET + UploadPart and Complete.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.lib.report import recording  # noqa: E402  (after the path is set)
from bench.lib.uploads import (  # noqa: E402
    MIB,
    PART,
    Client,
    CountingProxy,
    MotoProcess,
    PeakRss,
    Server,
    environment,
    finalize,
    floor,
    make_file,
    manage,
    part_files,
    reset_peak_rss,
    upload,
)

RSS_TARGET_MB = 150
RATIO_TARGET = 0.6
COPY_SPEEDUP_TARGET = 2.0
WAIT_SECONDS = 20.0


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--parallel", type=int, default=4, help="connections uploading parts")
    parser.add_argument("--storage", choices=("local", "s3"), default="local")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory")
    parser.add_argument("--save", action="store_true", help="write the figures to docs/benchmarks/")
    return parser.parse_args()


def installation(tmp, extra=None):
    data_dir = tmp / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    for prefix in ("temp", "final"):
        (data_dir / prefix).mkdir(exist_ok=True)
    env = {**environment(data_dir), **(extra or {})}
    manage(env, "migrate", "--no-input")
    token = manage(env, "portal_create_token", "bench", "--create-user")
    return env, data_dir, token


def run_local(args, tmp, size, source, expected):
    env, data_dir, token = installation(tmp)
    server = Server(env, tmp / "server.log")
    rss = PeakRss(server.proc.pid)
    try:
        client = Client(server.port, token)
        started = time.perf_counter()
        sid = upload(client, source, size, args.parallel)
        upload_s = time.perf_counter() - started
        os.sync()  # start each timed phase without the previous phase's dirty pages
        file, finalize_s, _ = finalize(client, sid)
        peak_mb = rss.stop()
    finally:
        server.stop()
    if file["sha256"] != expected:
        sys.exit(f"sha256 mismatch: server {file['sha256']}, expected {expected}")
    floor_s, floor_sha = floor(part_files(data_dir, sid), tmp / "floor.bin")
    assert floor_sha == expected, "floor produced a different sha256"
    mb = size / 1e6
    upload_rate, finalize_rate, floor_rate = mb / upload_s, mb / finalize_s, mb / floor_s
    ratio = finalize_rate / floor_rate
    print(f"file: {args.size_mib} MiB in {-(-size // PART)} parts of 8 MiB, local storage")
    print(f"upload:   {upload_s:7.2f} s  {upload_rate:8.1f} MB/s  ({args.parallel} connections)")
    print(f"finalize: {finalize_s:7.2f} s  {finalize_rate:8.1f} MB/s")
    print(f"floor:    {floor_s:7.2f} s  {floor_rate:8.1f} MB/s  (cat | tee | sha256sum)")
    ok = verdict(ratio >= RATIO_TARGET)
    print(f"finalize / floor: {ratio:.2f}x  (target >= {RATIO_TARGET}x: {ok})")
    ok = verdict(peak_mb < RSS_TARGET_MB)
    print(f"server peak RSS: {peak_mb:.1f} MB  (target < {RSS_TARGET_MB} MB: {ok})")


def finalize_on_s3(args, tmp, size, source, expected, moto, copy):
    """Upload and finalize once on S3; (finalize s, longest request s, worker io, peak MB)."""
    label = "copy" if copy else "stream"
    proxy = CountingProxy(moto.port)
    env, _, token = installation(
        tmp / label,
        {
            **moto.env(port=proxy.port),
            "PORTAL_S3_COPY_ASSEMBLY": "true" if copy else "false",
            "PORTAL_FINALIZE_WAIT_SECONDS": str(WAIT_SECONDS),
            "WEB_CONCURRENCY": "1",  # one worker: its /proc/<pid>/io is the whole story
        },
    )
    server = Server(env, tmp / f"server-{label}.log")
    try:
        client = Client(server.port, token)
        upload_rss = PeakRss(server.worker_pid())
        sid = upload(client, source, size, args.parallel)
        upload_mb = upload_rss.stop()
        upload_read = proxy.counts()[1]
        reset_peak_rss(server.worker_pid())
        rss = PeakRss(server.worker_pid())
        sent_before, received_before = proxy.counts()
        file, finalize_s, longest_s = finalize(client, sid)
        sent, received = proxy.counts()
        read, written = received - received_before, sent - sent_before
        peak_mb = rss.stop()
    finally:
        server.stop()
        proxy.close()
    if file["sha256"] != expected:
        sys.exit(f"{label}: sha256 mismatch: server {file['sha256']}, expected {expected}")
    print(
        f"{label}: worker peak RSS while {args.parallel} connections uploaded: {upload_mb:.1f} MB;"
        f" read back during the upload (parts hashed after their turn): "
        f"{upload_read / MIB:.0f} MiB"
    )
    return finalize_s, longest_s, read, written, peak_mb


def run_s3(args, tmp, size, source, expected):
    moto = MotoProcess(tmp / "moto.log")
    try:
        copy = finalize_on_s3(args, tmp, size, source, expected, moto, copy=True)
        stream = finalize_on_s3(args, tmp, size, source, expected, moto, copy=False)
        phases = emulator_phases(moto, source, size)
    finally:
        moto.stop()
    mb = size / 1e6
    print(f"file: {args.size_mib} MiB in {-(-size // PART)} parts of 8 MiB, S3 (moto server)")
    print(
        "finalize path          time      MB/s   longest request   worker read   worker wrote"
        "   peak RSS"
    )
    for name, (seconds, longest, read, written, peak) in (
        ("server-side copy", copy),
        ("streaming", stream),
    ):
        print(
            f"{name:18} {seconds:8.2f} s {mb / seconds:8.1f}   {longest:8.2f} s       "
            f"{read / MIB:8.0f} MiB  {written / MIB:8.0f} MiB  {peak:6.1f} MB"
        )
    speedup = stream[0] / copy[0]
    ok = verdict(speedup >= COPY_SPEEDUP_TARGET)
    print(f"copy vs streaming: {speedup:.2f}x faster (target >= {COPY_SPEEDUP_TARGET}x: {ok})")
    read_ok = copy[2] <= size * 1.05 and copy[3] <= 0.05 * size
    print(
        f"bytes through the worker on the copy path: read {copy[2] / size:.2f}x the file, "
        f"wrote {copy[3] / size:.3f}x (target <= 1x read, none written: {verdict(read_ok)})"
    )
    longest = max(copy[1], stream[1])
    print(
        f"longest finalize request: {longest:.2f} s (target <= {WAIT_SECONDS + 1:g} s: "
        f"{verdict(longest <= WAIT_SECONDS + 1)})"
    )
    peak = max(copy[4], stream[4])
    ok = verdict(peak < RSS_TARGET_MB)
    print(f"worker peak RSS: {peak:.1f} MB  (target < {RSS_TARGET_MB} MB: {ok})")
    copies, copy_complete, streamed, stream_complete = phases
    print(
        f"the emulator alone, same run, same parts, from this process: "
        f"{-(-size // PART)} UploadPartCopy {copies:.2f} s + CompleteMultipartUpload "
        f"{copy_complete:.2f} s; GET + UploadPart {streamed:.2f} s + Complete "
        f"{stream_complete:.2f} s. moto concatenates the parts itself on Complete (S3 does "
        f"not move bytes there); without it the copy is {streamed / copies:.1f}x faster"
    )


def emulator_phases(moto, source, size):
    """Time moto's own phases for this file: copies and Complete, against GET + UploadPart
    and Complete (what the worker's two paths ask of it), from the bench's client."""
    import boto3
    from botocore.config import Config

    client = boto3.client("s3", config=Config(max_pool_connections=16), **moto.credentials())
    bucket, count = moto.bucket, -(-size // PART)
    with open(source, "rb") as handle:
        for index in range(count):
            client.put_object(Bucket=bucket, Key=f"phases/{index}", Body=handle.read(PART))

    def multipart(key, put_part, threads):
        upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            etags = list(pool.map(lambda index: put_part(key, upload_id, index), range(count)))
        parts_s = time.perf_counter() - started
        client.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={
                "Parts": [{"ETag": e, "PartNumber": n + 1} for n, e in enumerate(etags)]
            },
        )
        return parts_s, time.perf_counter() - started - parts_s

    def copy_part(key, upload_id, index):
        source_key = {"Bucket": bucket, "Key": f"phases/{index}"}
        response = client.upload_part_copy(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=index + 1, CopySource=source_key
        )
        return response["CopyPartResult"]["ETag"]

    def stream_part(key, upload_id, index):
        body = client.get_object(Bucket=bucket, Key=f"phases/{index}")["Body"].read()
        response = client.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=index + 1, Body=body
        )
        return response["ETag"]

    return (*multipart("phases-copy", copy_part, 8), *multipart("phases-stream", stream_part, 4))


def verdict(ok):
    return "ok" if ok else "MISSED"


def main():
    args = parse_args()
    page = "upload" if args.storage == "local" else f"upload-{args.storage}"
    with recording("upload", save=args.save, page=page):
        measure(args)


def measure(args):
    size = args.size_mib * MIB
    tmp = Path(tempfile.mkdtemp(prefix="portal-bench-upload-"))
    try:
        source = tmp / "source.bin"
        expected = make_file(source, size)
        if args.storage == "s3":
            run_s3(args, tmp, size, source, expected)
        else:
            run_local(args, tmp, size, source, expected)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
