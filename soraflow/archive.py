"""The film's archive: where the output directory is, and where clips and outputs are kept.

The pipeline's use of ``soraflow.storage`` (local files or S3). The output directory and the
storage URL are checked before anything is spent (``resolve_paths``). Object keys derive from
the storyboard title and the clip key, so the same clip always lands at the same key and a
rerun finds it. Metadata says what the object is, and that it is AI-generated; it never
carries a secret.
"""

from __future__ import annotations

import json
import mimetypes
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from .documents import path_problem
from .errors import StorageError
from .generation import DownloadedClip
from .ledger import Ledger
from .plan import ClipSpec, sha256_file
from .settings import Settings
from .storage import LocalStorage, check_storage_url, clip_object_key, film_object_key, open_storage
from .terminal import printable


class StoredClip(BaseModel):
    model_config = ConfigDict(frozen=True)

    clip_key: str
    job_id: str
    local_path: str
    sha256: str
    size: int
    duration: float
    uri: str
    key: str
    uploaded: bool
    link: str | None = None  # credential-free (Storage.link); never a presigned URL


def open_for(storage_url: str, settings: Settings, session=None):
    return open_storage(storage_url, settings, session=session)


def clip_storage_key(title: str, spec: ClipSpec) -> str:
    return clip_object_key(title, spec.shot_id, spec.part, spec.clip_key)


def store_clip(
    spec: ClipSpec, downloaded: DownloadedClip, *, storage_url: str, title: str, settings: Settings, ledger: Ledger, session=None
) -> StoredClip:
    storage = open_for(storage_url, settings, session)
    key = clip_storage_key(title, spec)
    obj = storage.put_file(
        Path(downloaded.path),
        key,
        content_type="video/mp4",
        metadata={
            "clip-key": spec.clip_key,
            "shot-id": spec.shot_id,
            "part": str(spec.part),
            "model": spec.model,
            "size": spec.size,
            "seconds": str(spec.seconds),
            "prompt-sha256": spec.prompt_sha256,
            "job-id": downloaded.job_id,
            "ai-generated": "true",
        },
        sha256=downloaded.sha256,
    )
    ledger.record_stored(spec.clip_key, obj.uri)
    return StoredClip(
        clip_key=spec.clip_key,
        job_id=downloaded.job_id,
        local_path=downloaded.path,
        sha256=obj.sha256,
        size=obj.size,
        duration=downloaded.duration,
        uri=obj.uri,
        key=key,
        uploaded=obj.uploaded,
        link=obj.link,
    )


def store_outputs(
    out_dir: Path, names: list[str], *, storage_url: str, title: str, settings: Settings, session=None,
    metadata: dict[str, dict[str, str]] | None = None,
) -> dict[str, dict]:
    """Store the film's outputs (film.mp4, contact_sheet.png) beside its clips; ``metadata`` adds
    an output's own (by name: the film's C2PA manifest label).

    When the storage is the output folder itself (the default), the outputs already are where
    they are kept: nothing is copied, as a copy would be a second film.mp4 under OUT.
    """
    storage = open_for(storage_url, settings, session)
    stored = {}
    for name in names:
        path = out_dir / name
        if is_output_folder(storage, out_dir):
            stored[name] = {"uri": path.resolve().as_uri(), "sha256": sha256_file(path), "link": path.resolve().as_uri(), "uploaded": False}
            continue
        obj = storage.put_file(
            path,
            film_object_key(title, name),
            content_type=mimetypes.guess_type(name)[0] or "application/octet-stream",
            metadata={"ai-generated": "true", **(metadata or {}).get(name, {})},
        )
        stored[name] = {"uri": obj.uri, "sha256": obj.sha256, "link": obj.link, "uploaded": obj.uploaded}
    return stored


def store_manifest(stable: dict, out_dir: Path, name: str, *, storage_url: str, title: str, settings: Settings, session=None) -> dict[str, dict]:
    """Store the manifest beside the film: ``stable``, the manifest without this run's facts,
    so an unchanged rerun stores the same bytes. It is written to a temporary folder, not
    under OUT: OUT holds one manifest (the full one). With the output folder as the storage,
    that one is the stored manifest."""
    if is_output_folder(open_for(storage_url, settings, session), out_dir):
        return store_outputs(out_dir, [name], storage_url=storage_url, title=title, settings=settings, session=session)
    with tempfile.TemporaryDirectory(prefix="soraflow-manifest-") as tmp:
        (Path(tmp) / name).write_text(json.dumps(stable, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return store_outputs(Path(tmp), [name], storage_url=storage_url, title=title, settings=settings, session=session)


def is_output_folder(storage, folder: Path) -> bool:
    """Whether ``storage`` is the output folder itself (the default storage)."""
    return isinstance(storage, LocalStorage) and storage.root.resolve() == Path(folder).resolve()


def resolve_paths(out_dir: str | Path, storage: str | None, settings: Settings) -> tuple[Path, str]:
    """The output directory (absolute) and the storage URL (default: the output directory),
    both checked before anything is spent: a path the system cannot hold, an output "directory"
    that is a file, or a storage URL no store accepts is refused here, not after the clips."""
    shown = printable(repr(str(out_dir)), 200)
    if problem := path_problem(out_dir):
        raise StorageError(f"output directory {shown}: the path {problem}")
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise StorageError(f"output directory {shown} exists and is not a directory")
    url = storage or settings.storage or out.as_uri()
    return out, check_storage_url(url)
