"""The Cloud Storage objects Veo writes when a request names a ``storageUri``, served the way
the GCS JSON API serves them, so google-cloud-storage (``STORAGE_EMULATOR_HOST``, or a client
whose ``api_endpoint`` is the simulator) downloads them unchanged:

- ``GET /storage/v1/b/{bucket}/o/{object}`` → the object's metadata (``size``, ``md5Hash``,
  ``crc32c``, ``generation``), or its bytes with ``alt=media``;
- ``GET /download/storage/v1/b/{bucket}/o/{object}?alt=media`` → the bytes, streamed from the
  render on disk, with ``X-Goog-Hash`` so the client verifies what it received.

An object exists once its operation is done (as Veo writes it at the end); before, and for any
other name, the answer is GCS's 404 ``No such object``.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from pathlib import Path
from urllib.parse import quote
from typing import TYPE_CHECKING

import google_crc32c
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from .envelope import GoogleApiError, google_json

if TYPE_CHECKING:
    from ..jobs import Job
    from ..state import SimulatorState

_CHUNK = 1 << 20


class GcsObjects:
    """Object name (``bucket/path``) → the job that writes it; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[str, "Job"] = {}
        self._hashes: dict[Path, tuple[str, str]] = {}

    def expect(self, names: list[str], job: "Job") -> None:
        with self._lock:
            for name in names:
                self._objects[name] = job

    def job(self, name: str) -> "Job | None":
        with self._lock:
            return self._objects.get(name)

    def hashes(self, path: Path) -> tuple[str, str]:
        """Base64 MD5 and CRC32C of a file, computed once."""
        with self._lock:
            known = self._hashes.get(path)
        if known is None:
            md5, crc = hashlib.md5(), google_crc32c.Checksum()
            with open(path, "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    md5.update(chunk)
                    crc.update(chunk)
            known = (base64.b64encode(md5.digest()).decode(), base64.b64encode(crc.digest()).decode())
            with self._lock:
                self._hashes[path] = known
        return known

    def clear(self) -> None:
        with self._lock:
            self._objects.clear()


def gcs_routes(state: "SimulatorState") -> list[Route]:
    def located(request: Request) -> tuple[str, str, Path, "Job"]:
        bucket, name = request.path_params["bucket"], request.path_params["object"]
        job = state.gcs.job(f"{bucket}/{name}")
        t = state.jobs.clock()
        media = job.media(t) if job is not None else None
        if media is None:
            raise GoogleApiError(404, f"No such object: {bucket}/{name}")
        return bucket, name, media.path("video"), job

    def media(request: Request) -> Response:
        bucket, name, path, job = located(request)
        md5, crc = state.gcs.hashes(path)
        return FileResponse(path, media_type="video/mp4", headers={
            "x-goog-hash": f"crc32c={crc},md5={md5}", "x-goog-generation": str(job.seq), "x-goog-stored-content-encoding": "identity",
        })

    async def download(request: Request) -> Response:
        return media(request)

    async def metadata(request: Request) -> Response:
        if request.query_params.get("alt") == "media":
            return media(request)
        bucket, name, path, job = located(request)
        md5, crc = state.gcs.hashes(path)
        return google_json({
            "kind": "storage#object", "id": f"{bucket}/{name}/{job.seq}", "name": name, "bucket": bucket,
            "generation": str(job.seq), "metageneration": "1", "contentType": "video/mp4", "size": str(path.stat().st_size),
            "md5Hash": md5, "crc32c": crc, "storageClass": "STANDARD",
            "mediaLink": f"{str(request.base_url).rstrip('/')}/download/storage/v1/b/{bucket}/o/{quote(name, safe='')}?generation={job.seq}&alt=media",
        })

    return [
        Route("/download/storage/v1/b/{bucket}/o/{object:path}", download, methods=["GET"]),
        Route("/storage/v1/b/{bucket}/o/{object:path}", metadata, methods=["GET"]),
    ]
