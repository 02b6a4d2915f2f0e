"""Checksums of a file in one streaming pass: memory stays flat whatever the file size."""

from __future__ import annotations

import base64
import hashlib
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

_READ_SIZE = 4 * 1024 * 1024


@dataclass(frozen=True)
class FileDigest:
    size: int
    sha256: str | None = None
    crc32_b64: str | None = None  # S3's encoding of a CRC32 checksum
    etag: str | None = None  # what an S3 store's ETag is for these bytes when it is an MD5


def digest_file(
    path: str | Path,
    *,
    sha256: bool = True,
    crc32: bool = False,
    etag: bool = False,
    part_size: int | None = None,
) -> FileDigest:
    """The requested checksums in one read of the file.

    ``etag``: the MD5-style ETag an S3 store gives these bytes. ``part_size`` is the
    multipart chunk size the upload will use (the ETag is then the MD5 of the parts' MD5s,
    suffixed with the part count); None means a single PUT, whose ETag is the plain MD5.
    """
    sha = hashlib.sha256() if sha256 else None
    crc = 0
    md5_whole = hashlib.md5(usedforsecurity=False) if etag and not part_size else None
    part = hashlib.md5(usedforsecurity=False) if etag and part_size else None
    part_md5s: list[bytes] = []
    part_filled = 0
    size = 0
    buffer = bytearray(_READ_SIZE)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as src:
        while n := src.readinto(buffer):
            chunk = view[:n]
            if sha is not None:
                sha.update(chunk)
            if crc32:
                crc = zlib.crc32(chunk, crc)
            if md5_whole is not None:
                md5_whole.update(chunk)
            elif part is not None:
                # Parts do not align with reads: split the chunk at part boundaries.
                offset = 0
                while offset < n:
                    take = min(n - offset, part_size - part_filled)
                    part.update(chunk[offset : offset + take])
                    part_filled += take
                    offset += take
                    if part_filled == part_size:
                        part_md5s.append(part.digest())
                        part, part_filled = hashlib.md5(usedforsecurity=False), 0
            size += n
    expected_etag = None
    if md5_whole is not None:
        expected_etag = md5_whole.hexdigest()
    elif part is not None:
        if part_filled or not part_md5s:
            part_md5s.append(part.digest())
        expected_etag = f"{hashlib.md5(b''.join(part_md5s), usedforsecurity=False).hexdigest()}-{len(part_md5s)}"
    return FileDigest(
        size=size,
        sha256=sha.hexdigest() if sha is not None else None,
        crc32_b64=base64.b64encode(crc.to_bytes(4, "big")).decode() if crc32 else None,
        etag=expected_etag,
    )


def sha256_of(path: str | Path) -> str:
    return digest_file(path).sha256  # type: ignore[return-value]


def sha256_in_background(path: str | Path) -> Future[str]:
    """The file's sha256, computed on a thread (hashlib releases the GIL) while the caller
    does something slower, such as uploading it."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="soraflow-sha256")
    try:
        return pool.submit(sha256_of, path)
    finally:
        pool.shutdown(wait=False)
