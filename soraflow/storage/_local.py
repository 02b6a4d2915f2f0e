"""Files under a root directory: the embedded default store."""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from ..errors import StorageError
from ._base import RANGE_CHUNK_BYTES, StoredObject
from ._digest import sha256_of
from ._keys import check_key, check_range

log = logging.getLogger("soraflow.storage")


class LocalStorage:
    """Objects are files under ``root``; writes are atomic (temp file, fsync, rename).

    Sources are copied, not hard-linked: a hard link would let a later in-place rewrite of
    the source (a manifest regenerated with ``open(..., "w")``) change the stored object
    behind its checksum. ``copy_file_range`` keeps the copy in the kernel and is a reflink
    on copy-on-write filesystems. Content type and metadata have no place on a plain file
    and are not recorded.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().absolute()
        self.url = self.root.as_uri()

    def __repr__(self) -> str:
        return f"LocalStorage({self.url!r})"

    # --- keys -----------------------------------------------------------------------------

    def path(self, key: str) -> Path:
        """The file for ``key``; refuses keys that resolve (through symlinks too) outside
        the root."""
        check_key(key)
        root = self.root.resolve()
        target = (root / key).resolve()
        if not target.is_relative_to(root) or target == root:
            raise StorageError(f"key {key!r} resolves to {target}, outside the storage root {root}")
        return target

    def uri(self, key: str) -> str:
        return self.path(key).as_uri()

    def key_of(self, uri: str) -> str | None:
        parts = urlsplit(str(uri))
        if parts.scheme != "file" or parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
            return None
        where = Path(unquote(parts.path))
        for root in (self.root, self.root.resolve()):
            if where.is_relative_to(root):
                key = where.relative_to(root).as_posix()
                try:
                    self.path(key)  # a plain key that stays under the root, through symlinks too
                except StorageError:
                    return None
                return key
        return None

    # --- operations -----------------------------------------------------------------------

    def probe(self, *, write: bool = True) -> None:
        """The root is a directory (or can be made: its nearest existing parent is one) in which a
        file can be written: a real probe file, written and removed, so a read-only mount or a
        full disk shows here, not after clips are paid for. Nothing is created for good.
        (``write`` makes no difference here: the probe costs nothing.)"""
        probe_directory(self.root, what=f"storage {self.url}")

    def put_file(
        self,
        local_path: str | Path,
        key: str,
        *,
        content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
        sha256: str | None = None,
    ) -> StoredObject:
        source = Path(local_path)
        dest = self.path(key)
        if not source.is_file():
            raise StorageError(f"cannot store {source}: no such file")
        size = source.stat().st_size
        # A caller's sha256 is checked against the copy, saving a pass over the source.
        expected = sha256.lower() if sha256 else sha256_of(source)
        if dest.is_file():
            if _same_file(source, dest):
                _check(source, sha256_of(dest) if sha256 else expected, expected)
                return self._found(key, dest, expected)
            if dest.stat().st_size == size and sha256_of(dest) == expected:
                return self._found(key, dest, expected)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.tmp")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            _copy(source, tmp)
            _check(source, sha256_of(tmp), expected)
            os.replace(tmp, dest)
        except OSError as err:
            raise StorageError(f"could not store {source} at {dest}: {err}") from err
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(dest.parent)
        log.info("stored %s (%d bytes)", dest.as_uri(), size)
        return StoredObject(dest.as_uri(), key, expected, size, uploaded=True, link=dest.as_uri())

    def _found(self, key: str, dest: Path, sha256: str) -> StoredObject:
        log.info("already stored: %s", dest.as_uri())
        return StoredObject(dest.as_uri(), key, sha256, dest.stat().st_size, uploaded=False, link=dest.as_uri())

    def exists(self, key: str, sha256: str | None = None) -> StoredObject | None:
        dest = self.path(key)
        if not dest.is_file():
            return None
        actual = sha256_of(dest)
        if sha256 is not None and actual != sha256.lower():
            return None
        return StoredObject(dest.as_uri(), key, actual, dest.stat().st_size, uploaded=False, link=dest.as_uri())

    def link(self, key: str) -> str:
        return self.uri(key)

    def presign(self, key: str, expires_in: int | None = None) -> str | None:
        return self.uri(key)  # a local file needs no signature

    def get_file(self, key: str, local_path: str | Path) -> StoredObject:
        """Copy the stored file to ``local_path`` (atomically)."""
        src = self.path(key)
        if not src.is_file():
            raise StorageError(f"{src.as_uri()} does not exist")
        dest = Path(local_path)
        if dest.exists() and _same_file(src, dest):
            return self.exists(key)  # type: ignore[return-value]
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.tmp")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            _copy(src, tmp)
            os.replace(tmp, dest)
        except OSError as err:
            raise StorageError(f"could not copy {src.as_uri()} to {dest}: {err}") from err
        finally:
            tmp.unlink(missing_ok=True)
        return StoredObject(src.as_uri(), key, sha256_of(dest), dest.stat().st_size, uploaded=False, link=src.as_uri())


    def object_size(self, key: str) -> int | None:
        path = self.path(key)
        return path.stat().st_size if path.is_file() else None

    def read_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        check_range(start, end)
        path = self.path(key)
        try:
            f = open(path, "rb")
        except OSError as err:
            raise StorageError(f"cannot read {path.as_uri()}: {err.strerror or type(err).__name__}") from None
        size = os.fstat(f.fileno()).st_size
        if end >= size:
            f.close()
            raise StorageError(f"bytes {start}-{end} of {path.as_uri()} asked for, but it holds {size} bytes")
        f.seek(start)
        return _file_chunks(f, end - start + 1, path)


def _file_chunks(f: BinaryIO, remaining: int, path: Path) -> Iterator[bytes]:
    try:
        while remaining:
            data = f.read(min(RANGE_CHUNK_BYTES, remaining))
            if not data:
                raise StorageError(f"{path.as_uri()} ended {remaining} bytes early: it was cut while being read")
            remaining -= len(data)
            yield data
    finally:
        f.close()


def probe_directory(directory: str | Path, *, what: str) -> None:
    """StorageError unless files can be written in ``directory``, or in the nearest existing
    parent it would be made in: a probe file is written there and removed."""
    folder = Path(directory).expanduser().absolute()
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == folder else f"cannot be made: {existing} is a file, not a directory"
        raise StorageError(f"{what}: {folder} {where}")
    probe = existing / f".soraflow-probe-{uuid.uuid4().hex[:12]}"
    try:
        with open(probe, "xb") as f:
            f.write(b"soraflow preflight probe\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        made = "" if existing == folder else f" (it would be made in {existing})"
        raise StorageError(f"{what}: cannot write files in {existing}{made}: {err.strerror or type(err).__name__}") from None
    finally:
        probe.unlink(missing_ok=True)


def _check(source: Path, actual: str, expected: str) -> None:
    if actual != expected:
        raise StorageError(
            f"{source} has sha256 {actual}, not the expected {expected}; it changed since it was checked"
        )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _copy(src: Path, dest: Path) -> None:
    """Copy in the kernel (reflink where the filesystem can), flushed to disk."""
    with open(src, "rb") as fin, open(dest, "wb") as fout:
        size = os.fstat(fin.fileno()).st_size
        try:
            copied = 0
            while copied < size:
                n = os.copy_file_range(fin.fileno(), fout.fileno(), size - copied)
                if n == 0:
                    break
                copied += n
        except (AttributeError, OSError):
            # Not Linux, or a filesystem pair the syscall refuses: a plain streamed copy.
            fin.seek(0)
            fout.seek(0)
            fout.truncate()
            shutil.copyfileobj(fin, fout, 4 * 1024 * 1024)
        fout.flush()
        os.fsync(fout.fileno())


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
