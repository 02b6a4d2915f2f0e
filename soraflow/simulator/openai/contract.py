"""The reference contract (the official OpenAPI description, cut to Videos and Models), loaded
once for openapi-core, and checks of requests and responses against it.

The loaded description differs from the file in three documented ways, none of which relaxes
what a success body or a request must look like:
1. ``servers`` becomes ``/v1``: the reference names https://api.openai.com/v1, and requests
   reach the simulator on another host, so only the base path is kept.
2. Every operation gains a ``default`` response with the service's error envelope
   ``{"error": {"message", "type", "param", "code"}}`` (the schema OpenAI publishes as
   ``ErrorResponse``); the cut description documents success bodies only.
3. The content endpoint may answer ``image/jpeg``: the service sends the spritesheet as a JPEG,
   which the cut description does not list.
openapi-core validates OpenAPI 3.1 binary parts and bodies as strings, so binary payloads
(multipart parts without a declared type, video and image bodies) are decoded to ``str`` before
validation; their schemas are ``type: string`` either way.
A form is read as the openai SDK writes it: an object field goes out as one part per member,
named ``video[id]`` or ``input_reference[image_url]``; openapi-core's form reader would see a
part called ``video[id]`` and miss ``video``, so such parts are gathered into the object
``video: {"id": ...}`` they encode, and that object is checked against the field's schema.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

REFERENCE_PATH = Path(__file__).resolve().parent / "reference" / "openai-videos-models.openapi.json"
API_BASE = "/v1"

ERROR_ENVELOPE = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "code": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
        }
    },
}


def reference_document(path: Path = REFERENCE_PATH) -> dict:
    """The reference description with the three adjustments above."""
    spec = json.loads(path.read_text())
    spec = copy.deepcopy(spec)
    spec["servers"] = [{"url": API_BASE}]
    spec["components"]["schemas"]["SimulatorErrorEnvelope"] = ERROR_ENVELOPE
    for operations in spec["paths"].values():
        for operation in operations.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"].setdefault(
                    "default",
                    {
                        "description": "Error",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SimulatorErrorEnvelope"}}},
                    },
                )
    content = spec["paths"]["/videos/{video_id}/content"]["get"]["responses"]["200"]["content"]
    content.setdefault("image/jpeg", {"schema": {"type": "string", "format": "binary"}})
    return spec


def _as_text(value, **_params: str):
    # A form object gathered by _form_with_objects is already decoded.
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def _form_with_objects(value: bytes, **params: str):
    """openapi-core's multipart reader, with ``name[member]`` parts gathered into objects."""
    from openapi_core.deserializing.media_types.util import data_form_loads
    from werkzeug.datastructures import ImmutableMultiDict

    items: list[tuple[str, object]] = []
    objects: dict[str, dict] = {}
    for key, part in data_form_loads(value, **params).items(multi=True):
        name, bracket, member = key.partition("[")
        if bracket and name and member.endswith("]") and "[" not in member:
            if name not in objects:
                objects[name] = {}
                items.append((name, objects[name]))
            objects[name][member[:-1]] = part.decode("utf-8", "surrogateescape")
        else:
            items.append((key, part))
    return ImmutableMultiDict(items)


def _binary_as_text(value: bytes, **_params: str) -> str:
    return value.decode("latin-1")


@lru_cache(maxsize=None)
def reference_openapi(path: Path = REFERENCE_PATH):
    """The openapi-core ``OpenAPI`` for the reference (built once per process: ~0.2 s)."""
    try:
        from openapi_core import Config, OpenAPI
    except ImportError as err:  # pragma: no cover - openapi-core is in the dev extra
        raise RuntimeError("validate_requests needs openapi-core: pip install 'soraflow[dev]'") from err
    config = Config(
        extra_media_type_deserializers={
            "multipart/form-data": _form_with_objects,
            "application/octet-stream": _as_text,
            "video/mp4": _binary_as_text,
            "image/webp": _binary_as_text,
            "image/jpeg": _binary_as_text,
        }
    )
    return OpenAPI.from_dict(reference_document(path), config=config)


@dataclass
class HttpRequest:
    """An HTTP request in the shape openapi-core reads (its ``Request`` protocol)."""

    method: str
    path: str
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    host_url: str = "http://simulator"

    def __post_init__(self) -> None:
        from openapi_core.datatypes import RequestParameters
        from werkzeug.datastructures import Headers, ImmutableMultiDict

        self.method = self.method.lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(self.query), header=Headers(dict(self.headers)), cookie=ImmutableMultiDict(), path={}
        )

    @property
    def content_type(self) -> str:
        for name, value in self.headers.items():
            if name.lower() == "content-type":
                return value.lower()
        return ""


@dataclass
class HttpResponse:
    """An HTTP response in the shape openapi-core reads (its ``Response`` protocol)."""

    status_code: int
    data: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def content_type(self) -> str:
        for name, value in self.headers.items():
            if name.lower() == "content-type":
                return value.split(";")[0].strip().lower()
        return ""


def request_problems(request: HttpRequest) -> list[str]:
    """What is wrong with a request by the reference (empty when it conforms)."""
    try:
        reference_openapi().validate_request(request)
    except Exception as err:  # noqa: BLE001 - every openapi-core failure is a finding
        return _describe(err)
    return []


def response_problems(request: HttpRequest, response: HttpResponse) -> list[str]:
    """What is wrong with a response to ``request`` by the reference (empty when it conforms)."""
    try:
        reference_openapi().validate_response(request, response)
    except Exception as err:  # noqa: BLE001
        return _describe(err)
    return []


def _describe(err: Exception) -> list[str]:
    cause: Any = err.__cause__
    details = [e.message for e in getattr(cause, "schema_errors", None) or ()]
    head = f"{type(err).__name__}: {err}" if not details else type(err).__name__
    text = [head, *details] if details else [head]
    return [t if len(t) <= 500 else t[:500] + "…" for t in text]
