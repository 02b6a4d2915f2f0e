"""Google's error envelope, as the google-genai SDK parses it (``errors.APIError``).

Vertex AI answers ``{"error": {"code": 404, "message": "...", "status": "NOT_FOUND"}}``; the SDK
raises ``ClientError`` for 4xx and ``ServerError`` for 5xx and reads ``code``, ``status`` and
``message`` from that object. Quota refusals carry a ``google.rpc.RetryInfo`` detail whose
``retryDelay`` ("1s") says when to come back. A 502 comes from Google's front end, not the API:
an HTML page, which the SDK turns into ``{"message": <the page>, "status": "Bad Gateway"}``.
"""

from __future__ import annotations

import json
import uuid

from starlette.responses import Response

RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"

# HTTP status -> canonical status name (google.rpc.Code), as Vertex AI names them.
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

# google.rpc.Code numbers, for errors inside an operation (``{"done": true, "error": {...}}``).
RPC_CODES = {"INVALID_ARGUMENT": 3, "NOT_FOUND": 5, "RESOURCE_EXHAUSTED": 8, "INTERNAL": 13, "UNAVAILABLE": 14}

_BAD_GATEWAY_PAGE = (
    "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 502 (Server Error)!!1</title>\n"
    "  <p><b>502.</b> <ins>That's an error.</ins>\n  <p>The server encountered a temporary error and could not "
    "complete your request.<p>Please try again in 30 seconds.  <ins>That's all we know.</ins>\n"
)


class GoogleApiError(Exception):
    """Raised by a Veo handler; answered in Google's envelope."""

    def __init__(self, code: int, message: str, *, details: list[dict] | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = STATUS_NAMES.get(code, "UNKNOWN")
        self.details = details or []
        self.headers = headers or {}

    def body(self) -> dict:
        error = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            error["details"] = self.details
        return {"error": error}

    def response(self) -> Response:
        return google_json(self.body(), self.code, self.headers)


def google_json(payload: dict, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(payload),
        status_code=status,
        media_type="application/json; charset=UTF-8",
        headers={"x-request-id": uuid.uuid4().hex, **(headers or {})},
    )


def invalid_argument(message: str, field: str | None = None) -> GoogleApiError:
    details = [{"@type": BAD_REQUEST, "fieldViolations": [{"field": field, "description": message}]}] if field else None
    return GoogleApiError(400, message, details=details)


def unauthenticated() -> GoogleApiError:
    return GoogleApiError(
        401,
        "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or "
        "other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
    )


def model_not_found(resource: str) -> GoogleApiError:
    """What Vertex AI answers for a publisher model it does not (or no longer) serve."""
    return GoogleApiError(
        404,
        f"Publisher Model `{resource}` was not found or your project does not have access to it. Please ensure you "
        "are using a valid model version. For more information, see: "
        "https://cloud.google.com/vertex-ai/generative-ai/docs/learn/model-versions",
    )


def resource_exhausted(model: str, retry_after: float) -> GoogleApiError:
    return GoogleApiError(
        429,
        f"Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model with base model: "
        f"{model}. Please submit a quota increase request. https://cloud.google.com/vertex-ai/docs/generative-ai/quotas-genai.",
        details=[{"@type": RETRY_INFO, "retryDelay": f"{max(0.0, retry_after):g}s"}],
    )


def server_fault(status: int) -> Response:
    """A 500/503 in the envelope, or the front end's HTML 502."""
    if status == 502:
        return Response(_BAD_GATEWAY_PAGE, status_code=502, media_type="text/html; charset=UTF-8")
    message = {500: "Internal error encountered.", 503: "The service is currently unavailable."}[status]
    return GoogleApiError(status, message).response()
