"""Videos served with HTTP Range, from whichever store holds them, so a browser can seek.

Starlette's ``FileResponse`` answers ranges of local files only (its parser is private to it);
a take kept in S3 must be read through the storage layer, a ranged GET at a time, so the range
is parsed here (RFC 9110 section 14) and the bytes are streamed from ``Storage.read_range``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from ..errors import StorageError
from ..storage import Storage

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
VIDEO_TYPE = "video/mp4"


class Unsatisfiable(Exception):
    """The range asks for bytes past the end of the object."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range (first, last; both included) that ``header`` asks of an object of
    ``size`` bytes; None for the whole object (no header, a header this server ignores: several
    ranges, another unit, a malformed one, as RFC 9110 lets a server do); Unsatisfiable when it
    starts past the end."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip().replace(" ", ""))
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # bytes=-N: the last N bytes
        length = int(last)
        if length == 0:
            raise Unsatisfiable
        return max(0, size - length), size - 1
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise Unsatisfiable
    return start, min(int(last) if last else size - 1, size - 1)


async def ranged(request: Request, store: Storage, key: str) -> Response:
    """The object at ``key`` as a video answer: 200 with the whole object, 206 with the range
    asked for (``Content-Range``), 416 for a range past its end; every answer says
    ``Accept-Ranges: bytes``. HEAD gets the same headers and no body."""
    try:
        size = await run_in_threadpool(store.object_size, key)
    except StorageError as err:
        return JSONResponse({"error": str(err)}, 502)
    if size is None:
        return JSONResponse({"error": "this video is named in the review, but its store no longer holds it"}, 404)
    headers = {"Accept-Ranges": "bytes", "Content-Type": VIDEO_TYPE}
    try:
        wanted = parse_range(request.headers.get("range"), size)
    except Unsatisfiable:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    if wanted is None:
        status, (start, end) = 200, (0, size - 1)
    else:
        status, (start, end) = 206, wanted
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1 if size else 0)
    if request.method == "HEAD" or size == 0:
        return Response(status_code=status, headers=headers)
    try:
        chunks = await run_in_threadpool(store.read_range, key, start, end)
    except StorageError as err:
        return JSONResponse({"error": str(err)}, 502)
    return StreamingResponse(_streamed(chunks), status_code=status, headers=headers)


async def _streamed(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """The store's pieces, each read on a worker thread; the store's file or connection is closed
    however the answer ends (a browser that seeks elsewhere drops it half way)."""
    try:
        while (piece := await run_in_threadpool(next, chunks, None)) is not None:
            yield piece
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
