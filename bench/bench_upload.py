"""S3 upload cost and memory, as ratios against raw boto3 run in the same session.

1. A 200 MB file to the same moto server, rounds interleaved, four ways:
   - raw boto3 ``upload_file`` (the baseline; botocore's default per-part CRC32),
   - raw boto3 with the ExtraArgs soraflow sends (full-object CRC32, metadata, tag),
   - ``S3Storage.put_file`` with the caller's sha256 (the pipeline's case: the download
     hashed the clip; CRC32 pass, HEAD, upload, HEAD, sha256 re-checked on a thread),
   - ``put_file`` without one (film outputs: sha256 + CRC32 pass first).
   Target: put_file / raw upload_file <= 1.15. The second line separates what moto charges
   for a FULL_OBJECT checksum (it copies and hashes the whole object at completion; S3 does
   this server-side at no cost to the client) from soraflow's own overhead.
2. Peak RSS of a child process that puts a 1 GiB file with ``put_file`` (VmHWM: the
   interpreter, boto3 and the transfer threads included). Target <= 150 MB. Raw boto3's
   peak is printed beside it.

moto runs in its own process (it holds whole objects in memory), so the figures are
soraflow's process only. Not a test: it prints numbers. Wall times on a shared 2-core
machine are noisy; the CPU columns are steadier.

Run: .venv/bin/python bench/bench_upload.py [--size-mb 200] [--rss-size-mb 1024] [--rounds 6]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MB = 1000 * 1000
BUCKET = "soraflow-bench"
SERVER = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()  # until the parent closes our stdin
server.stop()
"""


def start_moto() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    port = proc.stdout.readline().strip()
    return proc, f"http://127.0.0.1:{port}"


def aws_env(endpoint: str) -> None:
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench-secret",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
    )


def write_random(path: Path, size: int) -> None:
    block = 4 * 1024 * 1024
    with open(path, "wb") as out:
        left = size
        while left:
            n = min(block, left)
            out.write(os.urandom(n))
            left -= n


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """This process's peak RSS. Linux's VmHWM, not ru_maxrss: ru_maxrss carries over the
    RSS of the parent that forked us (across exec), which would count the benchmark's own
    memory."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --- child: one upload, its peak RSS ----------------------------------------------------------


def child(kind: str, path: str, key: str) -> None:
    import boto3

    from soraflow.settings import Settings
    from soraflow.storage import open_storage
    from soraflow.storage._s3 import transfer_config

    if kind == "soraflow":
        store = open_storage(f"s3://{BUCKET}/rss", Settings())
        before = peak_rss_mb()
        store.put_file(path, key, content_type="application/octet-stream", metadata={"bench": "rss"})
    else:
        client = boto3.client("s3")
        before = peak_rss_mb()
        client.upload_file(path, BUCKET, f"rss/{key}", Config=transfer_config())
    print(f"{before:.1f} {peak_rss_mb():.1f}")


def measure_rss(kind: str, path: Path, key: str) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(path), key], check=True, capture_output=True, text=True
    ).stdout.split()
    return float(out[0]), float(out[1])


# --- parent -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--rss-size-mb", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--child", nargs=3, metavar=("KIND", "PATH", "KEY"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    moto, endpoint = start_moto()
    aws_env(endpoint)
    import boto3
    import psutil

    from soraflow.settings import Settings
    from soraflow.storage import open_storage
    from soraflow.storage._digest import digest_file
    from soraflow.storage._s3 import transfer_config

    tmp = Path(tempfile.mkdtemp(prefix="soraflow-bench-upload-"))
    try:
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        store = open_storage(f"s3://{BUCKET}/bench", Settings())

        data = tmp / "upload.bin"
        write_random(data, args.size_mb * MB)
        digest = digest_file(data, crc32=True)
        same_args = {
            "ContentType": "application/octet-stream",
            "Metadata": {"sha256": digest.sha256},
            "Tagging": "ai-generated=true",
            # exactly what put_file sends: without ChecksumAlgorithm, s3transfer takes another
            # path that moto charges twice as much for, which made soraflow look cheaper than it
            "ChecksumAlgorithm": "CRC32",
            "ChecksumCRC32": digest.crc32_b64,
        }
        variants = {
            "raw boto3 upload_file": lambda k: client.upload_file(str(data), BUCKET, k, Config=transfer_config()),
            "raw boto3, same ExtraArgs": lambda k: client.upload_file(
                str(data), BUCKET, k, ExtraArgs=same_args, Config=transfer_config()
            ),
            "put_file, caller's sha256": lambda k: store.put_file(
                data, k, content_type="application/octet-stream", metadata={}, sha256=digest.sha256
            ),
            "put_file, no sha256": lambda k: store.put_file(data, k, content_type="application/octet-stream", metadata={}),
        }
        times: dict[str, list[float]] = {name: [] for name in variants}
        cpu: dict[str, list[float]] = {name: [] for name in variants}
        server_cpu: dict[str, list[float]] = {name: [] for name in variants}
        server = psutil.Process(moto.pid)
        variants["raw boto3 upload_file"]("warmup")
        client.delete_object(Bucket=BUCKET, Key="warmup")
        for r in range(args.rounds):
            # Alternate the order: moto on the same two cores makes early and late runs differ.
            order = list(variants) if r % 2 == 0 else list(variants)[::-1]
            for i, name in enumerate(order):
                key = f"r{r}-v{i}"
                t0, c0, s0 = time.perf_counter(), cpu_seconds(), sum(server.cpu_times()[:2])
                variants[name](key)
                times[name].append(time.perf_counter() - t0)
                cpu[name].append(cpu_seconds() - c0)
                server_cpu[name].append(sum(server.cpu_times()[:2]) - s0)
                for k in (key, f"bench/{key}"):
                    client.delete_object(Bucket=BUCKET, Key=k)
        store.put_file(data, "again", content_type="application/octet-stream", metadata={})
        t0 = time.perf_counter()
        again = store.put_file(data, "again", content_type="application/octet-stream", metadata={}, sha256=digest.sha256)
        repeat = time.perf_counter() - t0
        assert not again.uploaded
        data.unlink()

        base = "raw boto3 upload_file"
        raw, raw_cpu = statistics.median(times[base]), statistics.median(cpu[base])
        print(f"upload {args.size_mb} MB to moto (its own process), {args.rounds} interleaved rounds, median:")
        print(f"  {'':28s} {'wall':>7s} {'ratio':>6s}   {'our CPU':>8s} {'ratio':>6s}   {'moto CPU':>8s}   wall runs")
        for name in variants:
            wall, ours_cpu, moto_cpu = (statistics.median(x[name]) for x in (times, cpu, server_cpu))
            print(
                f"  {name:28s} {wall:6.2f}s {wall / raw:6.3f}   {ours_cpu:7.2f}s {ours_cpu / raw_cpu:6.3f}   {moto_cpu:7.2f}s"
                f"   {', '.join(f'{t:.2f}' for t in times[name])}"
            )
        same = statistics.median(times["raw boto3, same ExtraArgs"])
        ours = statistics.median(times["put_file, caller's sha256"])
        print("  target: put_file / raw upload_file <= 1.15 (wall)")
        print(f"  soraflow's own overhead: put_file (caller's sha256) / raw with the same ExtraArgs = {ours / same:.3f}")
        print(f"  put_file of an object already stored: {repeat:.2f} s (CRC pass + HEAD, sha256 re-checked)")

        big = tmp / "big.bin"
        write_random(big, args.rss_size_mb * 1024 * 1024)
        ours_before, ours_peak = measure_rss("soraflow", big, "ours.bin")
        raw_before, raw_peak = measure_rss("raw", big, "raw.bin")
        print(f"peak RSS uploading {args.rss_size_mb} MiB (child process, moto elsewhere):")
        print(f"  soraflow put_file   {ours_peak:6.1f} MB  (after imports {ours_before:.1f} MB)   (target <= 150 MB)")
        print(f"  raw upload_file     {raw_peak:6.1f} MB  (after imports {raw_before:.1f} MB)")
    finally:
        moto.stdin.close()
        try:
            moto.wait(timeout=30)
        except subprocess.TimeoutExpired:
            moto.kill()
        for p in tmp.iterdir():
            p.unlink()
        tmp.rmdir()


if __name__ == "__main__":
    main()
