"""fal's storage upload, as fal-client 1.0.3 calls it, and the files it serves.

- ``POST /storage/auth/token?storage_type=fal-cdn-v3`` (``Authorization: Key``) →
  ``{token, token_type, base_url, expires_at}``; then ``POST /files/upload`` with that token,
  the bytes, ``Content-Type`` and ``X-Fal-File-Name`` → ``{access_url}`` (the default
  repository, ``fal_v3``; fal-client sends it to https://v3.fal.media);
- ``POST /storage/upload/initiate?storage_type=gcs`` (``Authorization: Key``) with
  ``{file_name, content_type}`` → ``{upload_url, file_url}``; then ``PUT upload_url`` with the
  bytes (the repository ``fal``; fal-client sends the first to https://rest.fal.ai);
- ``GET /files/{id}/{name}``: an uploaded file; ``GET /files/results/{request_id}/{name}``: a
  finished request's video (queue.py).
URLs are made on the host the client called (``127.0.0.1:PORT``, or ``v3.fal.media`` through
the proxy), so an upload's URL is one the same client can fetch. Files above fal-client's
multipart threshold (100 MiB) are refused: soraflow uploads images. Bodies are streamed to disk.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from .envelope import FalError, fal_json, invalid, unauthorized, unprocessable

if TYPE_CHECKING:
    from ..state import SimulatorState

MAX_UPLOAD_BYTES = 100 * 1024 * 1024
TOKEN_SECONDS = 3600
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class StoredFile:
    id: str
    name: str
    content_type: str
    path: Path
    size: int
    sha256: str


@dataclass
class FileStore:
    """Files uploaded to the simulated fal storage, on disk; thread-safe."""

    folder: Path
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _files: dict[str, StoredFile] = field(default_factory=dict)
    _pending: dict[str, tuple[str, str]] = field(default_factory=dict)  # initiated uploads: id -> (name, type)
    _tokens: set[str] = field(default_factory=set)

    def token(self) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens.add(token)
        return token

    def knows_token(self, token: str) -> bool:
        with self._lock:
            return token in self._tokens

    def initiate(self, name: str, content_type: str) -> str:
        upload_id = uuid.uuid4().hex
        with self._lock:
            self._pending[upload_id] = (name, content_type)
        return upload_id

    def pending(self, upload_id: str) -> tuple[str, str] | None:
        with self._lock:
            return self._pending.pop(upload_id, None)

    async def store(self, request: Request, *, name: str, content_type: str, upload_id: str | None = None) -> StoredFile:
        """Stream the request body to disk (never whole in memory)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        upload_id = upload_id or uuid.uuid4().hex
        path = self.folder / upload_id
        digest, size = hashlib.sha256(), 0
        with open(path, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_UPLOAD_BYTES:
                    out.close()
                    path.unlink(missing_ok=True)
                    raise FalError(413, f"File too large: uploads above {MAX_UPLOAD_BYTES} bytes go up in parts (multipart), "
                                        "which the simulator does not serve.")
                digest.update(chunk)
                out.write(chunk)
        stored = StoredFile(upload_id, _SAFE_NAME.sub("_", name) or "upload.bin", content_type, path, size, digest.hexdigest())
        with self._lock:
            self._files[upload_id] = stored
        return stored

    def get(self, file_id: str) -> StoredFile | None:
        with self._lock:
            return self._files.get(file_id)

    def by_url(self, url: str) -> StoredFile | None:
        """The stored file a URL of this storage names (``…/files/{id}/{name}``), whatever its host."""
        parts = urlsplit(url)
        match = re.fullmatch(r"/files/([0-9a-f]{32})/[^/]+", parts.path)
        return self.get(match.group(1)) if parts.scheme == "https" and match else None

    def clear(self) -> None:
        with self._lock:
            files = list(self._files.values())
            self._files.clear()
            self._pending.clear()
        for f in files:
            f.path.unlink(missing_ok=True)


def origin(request: Request) -> str:
    """``https://HOST`` as the client called it (the Host header)."""
    return f"https://{request.headers.get('host') or request.url.netloc}"


def require_fal_key(request: Request) -> None:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme != "Key" or not key.strip():
        raise unauthorized()


def storage_routes(state: "SimulatorState") -> list[Route]:
    files: FileStore = state.fal.files

    async def token(request: Request) -> Response:
        require_fal_key(request)
        await request.body()
        expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=TOKEN_SECONDS)
        return fal_json({"token": files.token(), "token_type": "Bearer", "base_url": origin(request), "expires_at": expires.isoformat()})

    async def cdn_upload(request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or not files.knows_token(token):
            raise FalError(401, "Invalid or expired upload token.")
        content_type = request.headers.get("content-type", "application/octet-stream")
        stored = await files.store(request, name=request.headers.get("x-fal-file-name") or "upload.bin", content_type=content_type)
        return fal_json({"access_url": f"{origin(request)}/files/{stored.id}/{stored.name}"})

    async def initiate(request: Request) -> Response:
        require_fal_key(request)
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("content_type"), str):
            raise unprocessable([invalid("content_type", "Field required", "missing")])
        name = _SAFE_NAME.sub("_", str(body.get("file_name") or "upload.bin"))
        upload_id = files.initiate(name, body["content_type"])
        return fal_json({"upload_url": f"{origin(request)}/storage/upload/{upload_id}", "file_url": f"{origin(request)}/files/{upload_id}/{name}"})

    async def put_upload(request: Request) -> Response:
        upload_id = request.path_params["upload_id"]
        pending = files.pending(upload_id)
        if pending is None:
            raise FalError(404, "No upload was initiated at this URL.")
        name, content_type = pending
        await files.store(request, name=name, content_type=request.headers.get("content-type") or content_type, upload_id=upload_id)
        return Response(status_code=200)

    async def get_file(request: Request) -> Response:
        stored = files.get(request.path_params["file_id"])
        if stored is None or not os.path.isfile(stored.path):
            raise FalError(404, "File not found.")
        return FileResponse(stored.path, media_type=stored.content_type)

    return [
        Route("/storage/auth/token", token, methods=["POST"]),
        Route("/storage/upload/initiate", initiate, methods=["POST"]),
        Route("/storage/upload/{upload_id}", put_upload, methods=["PUT"]),
        Route("/files/upload", cdn_upload, methods=["POST"]),
        Route("/files/{file_id:str}/{name:str}", get_file, methods=["GET"]),
    ]
