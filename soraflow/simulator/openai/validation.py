"""Reading and checking API requests the way the service does, with its error wording."""

from __future__ import annotations

import base64
import binascii
import json

from starlette.datastructures import UploadFile
from starlette.requests import Request

from .envelope import ApiError
from ..images import NotAnImage, image_size

PROMPT_MAX = 32000


def require_key(request: Request) -> None:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(
            401,
            "You didn't provide an API key. You need to provide your API key in an Authorization header "
            "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )


async def read_fields(request: Request, allowed: tuple[str, ...]) -> dict:
    """The body as a dict, from multipart/form or JSON; uploaded files stay ``UploadFile``."""
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = await request.form()
        fields: dict = {}
        for key, value in form.multi_items():
            name, bracket, member = key.partition("[")
            is_member = bool(bracket and member.endswith("]") and name)
            if name in fields and isinstance(fields[name], dict) != is_member:
                raise ApiError(400, f"Invalid '{name}': given both as a value and as an object.", param=name)
            if is_member:
                # How the openai SDK sends an object in a form: input_reference[image_url], video[id].
                fields.setdefault(name, {})[member[:-1]] = value
            else:
                fields[key] = value
    else:
        raw = await request.body()
        if not raw.strip():
            fields = {}
        else:
            try:
                fields = json.loads(raw)
            except ValueError:
                raise ApiError(400, "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
                               "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent "
                               "was not valid JSON.)") from None
            if not isinstance(fields, dict):
                raise ApiError(400, "Invalid body: expected a JSON object.")
    for key in fields:
        if key not in allowed:
            raise ApiError(400, f"Unknown parameter: '{key}'.", param=key, code="unknown_parameter")
    return fields


def string_field(fields: dict, name: str, default: str | None = None) -> str | None:
    value = fields.get(name, default)
    if value is None or isinstance(value, str):
        return value
    kind = "an integer" if isinstance(value, int) else f"a {type(value).__name__}"
    raise ApiError(400, f"Invalid type for '{name}': expected a string, but got {kind} instead.", param=name, code="invalid_type")


def missing(name: str) -> ApiError:
    return ApiError(400, f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter")


def validated_text(fields: dict, name: str, max_length: int) -> str:
    """A required string field of 1..``max_length`` characters."""
    text = string_field(fields, name)
    if text is None:
        raise missing(name)
    if not text:
        raise ApiError(400, f"Invalid '{name}': empty string. Expected a string with minimum length 1, but got an empty string instead.",
                       param=name, code="empty_string")
    if len(text) > max_length:
        raise too_long(name, text, max_length)
    return text


def too_long(name: str, text: str, max_length: int) -> ApiError:
    return ApiError(400, f"Invalid '{name}': string too long. Expected a string with maximum length {max_length}, "
                    f"but got a string with length {len(text)} instead.", param=name, code="string_above_max_length")


def prompt_too_long(prompt: str, max_length: int) -> ApiError:
    """A prompt within the API's limit but longer than this model takes."""
    return too_long("prompt", prompt, max_length)


def validated_prompt(fields: dict) -> str:
    return validated_text(fields, "prompt", PROMPT_MAX)


async def reference_bytes(value) -> bytes | None:
    """The reference image's bytes, from an upload or a ``data:`` URL in a reference object."""
    if value is None:
        return None
    if isinstance(value, UploadFile):
        return await value.read()
    if isinstance(value, dict):
        url, file_id = value.get("image_url"), value.get("file_id")
        if bool(url) == bool(file_id):
            raise ApiError(400, "Invalid 'input_reference': provide exactly one of 'image_url' or 'file_id'.", param="input_reference")
        if file_id:
            raise ApiError(404, f"No such File object: {file_id}", param="input_reference")
        if not isinstance(url, str) or not url.startswith("data:"):
            raise ApiError(400, "Invalid 'input_reference.image_url': the simulator takes a base64 data URL or an uploaded file, "
                           "not a remote URL.", param="input_reference")
        try:
            return base64.b64decode(url.partition(",")[2], validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "Invalid 'input_reference.image_url': not valid base64 data.", param="input_reference") from None
    raise ApiError(400, "Invalid 'input_reference': expected an image file upload (image/png, image/jpeg or image/webp) or an "
                   "object with 'image_url' or 'file_id'.", param="input_reference", code="invalid_type")


def check_reference(data: bytes, size: str) -> None:
    try:
        fmt, width, height = image_size(data)
    except NotAnImage:
        raise ApiError(400, "Invalid 'input_reference': the file is not a supported image; supported formats are "
                       "image/png, image/jpeg and image/webp.", param="input_reference", code="invalid_image_format") from None
    if f"{width}x{height}" != size:
        raise ApiError(400, f"Inpaint image must match the requested width and height: the {fmt} image is {width}x{height}, "
                       f"the requested size is {size}.", param="input_reference", code="invalid_image_size")
