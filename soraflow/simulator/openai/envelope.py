"""Errors in the service's envelope: ``{"error": {"message", "type", "param", "code"}}``.

Messages follow the service's wording where it is known, because clients (and soraflow's
error classification) read them: ``model_not_found`` for a retired model, ``invalid_value``
naming the allowed values, ``rate_limit_exceeded`` with ``retry-after``.
"""

from __future__ import annotations

import json
import uuid

from starlette.responses import Response

from ..errors import Refusal


class ApiError(Refusal):
    """Raised by a handler; the app answers it as an error envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(status, message, param=param, code=code)
        self.type = type
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> Response:
        return json_response(self.body(), self.status, self.headers)


def json_response(payload: dict, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(payload),
        status_code=status,
        media_type="application/json",
        headers={"x-request-id": f"req_{uuid.uuid4().hex}", **(headers or {})},
    )


def invalid_value(param: str, value: object, allowed: list[str] | tuple[str, ...], scope: str = "") -> ApiError:
    choices = ", ".join(f"'{a}'" for a in allowed)
    where = f" for {scope}" if scope else ""
    return ApiError(
        400,
        f"Invalid value: '{value}'. Supported values{where} are: {choices}.",
        param=param,
        code="invalid_value",
    )


def not_found(what: str, ident: str, param: str | None = None) -> ApiError:
    return ApiError(404, f"{what} with id '{ident}' not found.", param=param, code=None)


# Faults answer with the bodies the service sends, so SDK error parsing sees the real thing.
def rate_limited(model_hint: str, retry_after: float) -> ApiError:
    seconds = max(0.0, retry_after)
    return ApiError(
        429,
        f"Rate limit reached for {model_hint} on requests per min (RPM). Please try again in {seconds:g}s.",
        type="requests",
        code="rate_limit_exceeded",
        headers={"retry-after": str(max(0, round(seconds))), "retry-after-ms": str(int(seconds * 1000))},
    )


SERVER_ERRORS = {
    500: ("The server had an error while processing your request. Sorry about that!", "server_error"),
    502: ("Bad gateway.", "server_error"),
    503: ("The server is overloaded or not ready yet.", "server_error"),
}


def server_error(status: int) -> ApiError:
    message, kind = SERVER_ERRORS[status]
    return ApiError(status, message, type=kind, code=None)
