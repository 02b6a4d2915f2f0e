"""Helpers for the storage tests. The S3 endpoint fixtures come from tests/fixtures/s3.py,
registered for the whole suite in tests/conftest.py."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

MiB = 1024 * 1024


def write_media(path: Path, size: int, seed: int) -> str:
    """A file of ``size`` bytes, random at the start of every 256 KiB (sparse-ish, so it
    is quick to write and still changes with ``seed``); returns its sha256."""
    rng = random.Random(seed)
    digest = hashlib.sha256()
    block = 256 * 1024
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        remaining = size
        while remaining:
            n = min(block, remaining)
            head = rng.randbytes(min(n, 4096))
            chunk = head + bytes(n - len(head))
            out.write(chunk)
            digest.update(chunk)
            remaining -= n
    return digest.hexdigest()


@pytest.fixture
def media(tmp_path: Path) -> Callable[..., tuple[Path, str]]:
    """``media(name, size, seed)`` -> (path, sha256) of a fresh file under tmp_path/src."""

    def make(name: str = "clip.mp4", size: int = 1 * MiB, seed: int = 1) -> tuple[Path, str]:
        path = tmp_path / "src" / name
        return path, write_media(path, size, seed)

    return make


@contextmanager
def sent_requests(client) -> Iterator[list[tuple[str, str]]]:
    """Every request the client sends, as (operation, HTTP method), retries included."""
    seen: list[tuple[str, str]] = []

    def record(request, event_name, **_):
        seen.append((event_name.rsplit(".", 1)[-1], request.method))

    client.meta.events.register_first("before-send.s3", record)
    try:
        yield seen
    finally:
        client.meta.events.unregister("before-send.s3", record)


def operations(seen: list[tuple[str, str]]) -> list[str]:
    return [op for op, _ in seen]
