"""A folder of storyboards (local, or an S3 prefix mirrored locally) and which are still to render.

Each storyboard renders into ``OUT_ROOT/<name>/``. Once it has rendered, a small record
(``.soraflow-source.json``) next to its manifest keeps the storyboard's sha256, so the next
scheduled run skips it; editing the file changes the hash and it renders again (the ledger
and cache make that rerun pay only for clips whose prompt or settings changed). A storyboard
refused for a reason no rerun can fix (invalid, over budget) is recorded too and skipped until
it changes.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .errors import StorageError

STORYBOARD_SUFFIXES = (".yaml", ".yml", ".json")
RECORD_NAME = ".soraflow-source.json"
MANIFEST_NAME = "manifest.json"

Outcome = Literal["finished", "rejected"]


@dataclass(frozen=True)
class InboxItem:
    name: str
    path: Path
    sha256: str
    out_dir: Path
    state: Literal["new", "changed", "finished", "rejected"]

    @property
    def to_render(self) -> bool:
        return self.state in ("new", "changed")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def storyboard_files(folder: Path) -> list[Path]:
    """Storyboards directly in ``folder`` (not below it: sub-folders hold their images)."""
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in STORYBOARD_SUFFIXES and not p.name.startswith(".")
    )


def _out_names(files: list[Path]) -> dict[Path, str]:
    """One output directory name per storyboard: its stem, or its full name if stems collide."""
    stems: dict[str, int] = {}
    for f in files:
        stems[f.stem] = stems.get(f.stem, 0) + 1
    return {f: f.stem if stems[f.stem] == 1 else f.name.replace(".", "-") for f in files}


def _record(out_dir: Path) -> dict:
    try:
        return json.loads((out_dir / RECORD_NAME).read_text())
    except (OSError, ValueError):
        return {}


def ensure_folder(folder: Path) -> Path:
    """Create a storyboard folder that does not exist yet (a new service's inbox)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise StorageError(f"storyboard folder {folder} does not exist and cannot be created: {err.strerror}") from err
    return folder


def scan(folder: Path, out_root: Path) -> list[InboxItem]:
    """Every storyboard in ``folder`` with its state against what ``out_root`` already holds."""
    if not folder.is_dir():
        raise StorageError(f"storyboard folder {folder} does not exist or is not a directory")
    files = storyboard_files(folder)
    items = []
    for path, name in _out_names(files).items():
        out_dir = out_root / name
        sha = sha256_file(path)
        record = _record(out_dir)
        if record.get("sha256") != sha:
            state = "changed" if record else "new"
        elif record.get("outcome") == "finished" and (out_dir / MANIFEST_NAME).exists():
            state = "finished"
        elif record.get("outcome") == "rejected":
            state = "rejected"
        else:
            state = "new"  # finished once, but its outputs are gone
        items.append(InboxItem(name=path.name, path=path, sha256=sha, out_dir=out_dir, state=state))
    return items


def record_outcome(item: InboxItem, outcome: Outcome, detail: str | None = None) -> None:
    item.out_dir.mkdir(parents=True, exist_ok=True)
    record = {"storyboard": item.name, "sha256": item.sha256, "outcome": outcome, "detail": detail}
    tmp = item.out_dir / f"{RECORD_NAME}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, item.out_dir / RECORD_NAME)


def mirror_s3_prefix(url: str, dest: Path, *, client=None) -> Path:
    """Copy ``s3://bucket/prefix`` (storyboards and the images they reference) into ``dest``.

    Storyboards are always fetched again (they are small and may have been edited in place);
    other objects only when missing or of another size. boto3 reads ``AWS_ENDPOINT_URL``, so
    MinIO and other S3-compatible stores work unchanged.
    """
    if not url.startswith("s3://"):
        raise StorageError(f"{url!r} is not an s3://bucket/prefix URL")
    bucket, _, prefix = url[5:].partition("/")
    prefix = prefix.strip("/")
    if client is None:
        import boto3

        client = boto3.client("s3")
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/" if prefix else "")
    try:
        for page in pages:
            for obj in page.get("Contents", []):
                key = obj["Key"]
                relative = key[len(prefix) + 1 :] if prefix else key
                if not relative or relative.endswith("/"):
                    continue
                local = (dest / relative).resolve()
                if root not in local.parents:  # a key like "../x" must not escape the mirror
                    raise StorageError(f"s3://{bucket}/{key}: object key leaves the prefix")
                stale = local.suffix.lower() in STORYBOARD_SUFFIXES or not local.exists() or local.stat().st_size != obj["Size"]
                if stale:
                    local.parent.mkdir(parents=True, exist_ok=True)
                    client.download_file(bucket, key, str(local))
    except StorageError:
        raise
    except Exception as err:  # noqa: BLE001 - botocore errors name the bucket and the cause
        raise StorageError(f"could not read {url}: {err}") from err
    return dest


__all__ = ["InboxItem", "STORYBOARD_SUFFIXES", "ensure_folder", "mirror_s3_prefix", "record_outcome", "scan", "sha256_file", "storyboard_files"]
