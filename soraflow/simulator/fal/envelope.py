"""fal's answers and refusals, as fal-client reads them (``_raise_for_status``: ``detail`` of a
JSON body, else the text; ``error_type`` of the body, else the ``x-fal-error-type`` header).

- 422: pydantic's validation list, ``{"detail": [{"loc": ["body", NAME], "msg", "type", "input"}]}``;
- 401: ``{"detail": "..."}`` (no or a bad ``Authorization: Key``);
- 429: ``{"detail": "..."}`` (fal-client resends it, up to 10 times);
- 500 from fal's own servers carries ``x-fal-request-id`` (fal-client does not resend it);
  a 502/503 from the ingress is nginx's HTML page without it (fal-client resends it).
Every answer of fal's own servers carries ``x-fal-request-id``.
"""

from __future__ import annotations

import json
import uuid

from starlette.responses import Response

from ..errors import Refusal

_NGINX = "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
_REASONS = {502: "Bad Gateway", 503: "Service Temporarily Unavailable"}


class FalError(Refusal):
    """Raised by a fal handler; answered as ``{"detail": ...}`` (a message or pydantic's list)."""

    def __init__(self, status: int, detail: str | list, *, error_type: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(status, detail if isinstance(detail, str) else json.dumps(detail), code=error_type)
        self.detail = detail
        self.error_type = error_type
        self.headers = headers or {}

    def response(self) -> Response:
        body: dict = {"detail": self.detail}
        if self.error_type:
            body["error_type"] = self.error_type
        return fal_json(body, self.status, self.headers)


def fal_json(payload: dict, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(payload), status_code=status, media_type="application/json",
        headers={"x-fal-request-id": str(uuid.uuid4()), **(headers or {})},
    )


def invalid(name: str, message: str, kind: str, value: object = None) -> dict:
    """One entry of a 422's detail list, as pydantic words it."""
    return {"loc": ["body", name], "msg": message, "type": kind, "input": value}


def unprocessable(entries: list[dict]) -> FalError:
    return FalError(422, entries)


def unauthorized() -> FalError:
    return FalError(401, "Unauthorized: the Authorization header must be 'Key <your fal key>'.")


def rate_limited(retry_after: float) -> FalError:
    return FalError(429, "Too many requests: your rate limit was exceeded, try again later.",
                    headers={"retry-after": str(max(0, round(retry_after)))})


def server_fault(status: int) -> Response:
    """A 500 of fal's own (with its request id), or the ingress's 502/503 (nginx, without one)."""
    if status == 500:
        return FalError(500, "Internal server error").response()
    page = _NGINX.format(status=status, reason=_REASONS[status])
    return Response(page, status_code=status, media_type="text/html")


def refusal_response(refusal: Refusal) -> Response:
    """A shared part's refusal in fal's words."""
    if isinstance(refusal, FalError):
        return refusal.response()
    if refusal.status == 422 or refusal.param:
        return unprocessable([invalid(refusal.param or "body", refusal.message, refusal.code or "value_error")]).response()
    return FalError(refusal.status, refusal.message).response()
