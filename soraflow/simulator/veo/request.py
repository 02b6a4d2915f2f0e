"""Reading a ``predictLongRunning`` body the way Vertex AI checks it.

The google-genai SDK (``_GenerateVideosParameters_to_vertex``) sends::

    {"instances": [{"prompt", "image", "lastFrame", "referenceImages": [{"image", "referenceType"}], "video"}],
     "parameters": {"sampleCount", "storageUri", "durationSeconds", "seed", "aspectRatio", "resolution",
                    "personGeneration", "negativePrompt", "enhancePrompt", "generateAudio", "resizeMode", ...},
     "labels": {...}}

with images as ``{"bytesBase64Encoded", "mimeType"}`` (or ``{"gcsUri"}``), and the video an
extension continues likewise (``{"gcsUri", "mimeType"}`` or inline bytes). Every refusal is a
400 INVALID_ARGUMENT naming the field and what is allowed.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field

from ..images import NotAnImage, image_size
from .envelope import invalid_argument
from .models import ASPECT_RATIOS, EXTENSION_SECONDS, MAX_REFERENCE_IMAGES, MAX_SAMPLES, PERSON_GENERATION, VeoModel

INSTANCE_FIELDS = {"prompt", "image", "lastFrame", "referenceImages", "video", "mask"}
PARAMETER_FIELDS = {
    "sampleCount", "storageUri", "fps", "durationSeconds", "seed", "aspectRatio", "resolution", "personGeneration",
    "pubsubTopic", "negativePrompt", "enhancePrompt", "generateAudio", "compressionQuality", "resizeMode",
}
RESIZE_MODES = ("pad", "crop")
SEED_MAX = 2**32 - 1


@dataclass(frozen=True)
class VeoRequest:
    prompt: str
    seconds: int
    aspect_ratio: str
    resolution: str
    audio: bool
    samples: int = 1
    first_frame: bytes | None = field(default=None, repr=False)
    last_frame: bytes | None = field(default=None, repr=False)
    reference_images: tuple[bytes, ...] = field(default=(), repr=False)
    negative_prompt: str | None = None
    seed: int | None = None
    person_generation: str = "allow_adult"
    resize_mode: str = "crop"
    storage_uri: str | None = None
    # An extension: the video it continues, inline or as a gs:// object (checked by the route).
    video: bytes | None = field(default=None, repr=False)
    video_uri: str | None = None

    @property
    def extends(self) -> bool:
        return self.video is not None or self.video_uri is not None


def parse_body(raw: bytes) -> dict:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise invalid_argument("Invalid JSON payload received. Unexpected token.") from None
    if not isinstance(body, dict):
        raise invalid_argument("Invalid JSON payload received. Expected an object.")
    return body


def _choice(value, name: str, allowed, model: VeoModel) -> str:
    if not isinstance(value, str) or value.lower() not in allowed:
        shown = ", ".join(allowed)
        raise invalid_argument(f"Unsupported {name}: {value!r}. Supported values for {model.name} are: {shown}.", f"parameters.{name}")
    return value.lower()


def _image(value, where: str) -> bytes:
    if not isinstance(value, dict):
        raise invalid_argument(f"{where} must be an object with bytesBase64Encoded or gcsUri.", where)
    if value.get("gcsUri"):
        raise invalid_argument(f"{where}.gcsUri: the simulator takes inline images (bytesBase64Encoded) only.", where)
    data = value.get("bytesBase64Encoded")
    if not isinstance(data, str) or not data:
        raise invalid_argument(f"{where}: bytesBase64Encoded is required.", where)
    try:
        raw = base64.b64decode(data, validate=True)
        image_size(raw)
    except (binascii.Error, ValueError, NotAnImage):
        raise invalid_argument(f"{where}: the image could not be decoded; use PNG, JPEG or WebP bytes.", where) from None
    return raw


def veo_request(body: dict, model: VeoModel) -> VeoRequest:
    unknown = set(body) - {"instances", "parameters", "labels"}
    if unknown:
        raise invalid_argument(f'Invalid JSON payload received. Unknown name "{sorted(unknown)[0]}": Cannot find field.')
    instances = body.get("instances")
    if not isinstance(instances, list) or len(instances) != 1 or not isinstance(instances[0], dict):
        raise invalid_argument("instances must hold exactly one instance.", "instances")
    instance, params = instances[0], body.get("parameters") or {}
    if not isinstance(params, dict):
        raise invalid_argument("parameters must be an object.", "parameters")
    for name in sorted(set(instance) - INSTANCE_FIELDS):
        raise invalid_argument(f'Invalid JSON payload received. Unknown name "{name}" at \'instances[0]\': Cannot find field.')
    for name in sorted(set(params) - PARAMETER_FIELDS):
        raise invalid_argument(f'Invalid JSON payload received. Unknown name "{name}" at \'parameters\': Cannot find field.')
    if "mask" in instance:
        raise invalid_argument("Video editing with a mask is not served by the simulator.", "instances[0].mask")
    video, video_uri = _video(instance["video"], model) if "video" in instance else (None, None)
    if (video is not None or video_uri) and any(k in instance for k in ("image", "lastFrame", "referenceImages")):
        raise invalid_argument("A video extension takes a prompt and a video only: no image, lastFrame or referenceImages.",
                               "instances[0].video")

    prompt = instance.get("prompt") or ""
    first_frame = _image(instance["image"], "instances[0].image") if "image" in instance else None
    if not isinstance(prompt, str) or (not prompt.strip() and first_frame is None):
        raise invalid_argument("A text prompt is required when no image is given.", "instances[0].prompt")
    last_frame = None
    if "lastFrame" in instance:
        if not model.last_frame:
            raise invalid_argument(f"{model.name} does not take a last frame.", "instances[0].lastFrame")
        if first_frame is None:
            raise invalid_argument("lastFrame is only supported together with a first-frame image.", "instances[0].lastFrame")
        last_frame = _image(instance["lastFrame"], "instances[0].lastFrame")
    references: list[bytes] = []
    if "referenceImages" in instance:
        items = instance["referenceImages"]
        if not model.reference_images:
            raise invalid_argument(f"{model.name} does not take reference images.", "instances[0].referenceImages")
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_REFERENCE_IMAGES:
            raise invalid_argument(f"referenceImages takes 1 to {MAX_REFERENCE_IMAGES} images.", "instances[0].referenceImages")
        if first_frame is not None:
            raise invalid_argument("referenceImages cannot be combined with a first-frame image.", "instances[0].referenceImages")
        for i, item in enumerate(items):
            where = f"instances[0].referenceImages[{i}]"
            kind = (item or {}).get("referenceType", "") if isinstance(item, dict) else ""
            if str(kind).lower() != "asset":
                raise invalid_argument(f"{where}.referenceType must be 'asset' for Veo 3.1.", where)
            references.append(_image(item.get("image"), f"{where}.image"))

    extending = video is not None or video_uri is not None
    seconds = params.get("durationSeconds", EXTENSION_SECONDS if extending else 8)
    allowed_seconds = (EXTENSION_SECONDS,) if extending else model.seconds
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds not in allowed_seconds:
        shown = ", ".join(str(s) for s in allowed_seconds) + (" (an extension)" if extending else "")
        raise invalid_argument(f"Unsupported durationSeconds: {seconds!r}. Supported values for {model.name} are: {shown}.",
                               "parameters.durationSeconds")
    aspect = params.get("aspectRatio", "16:9")
    if aspect not in ASPECT_RATIOS:
        raise invalid_argument(f"Unsupported aspectRatio: {aspect!r}. Supported values are: {', '.join(ASPECT_RATIOS)}.",
                               "parameters.aspectRatio")
    resolution = _choice(params.get("resolution", "720p"), "resolution", model.resolutions, model)
    if resolution in model.eight_seconds_only and seconds != 8 and not extending:
        raise invalid_argument(f"resolution {resolution} is only supported with durationSeconds 8, not {seconds}.",
                               "parameters.durationSeconds")
    if references and seconds != 8:
        raise invalid_argument(f"referenceImages are only supported with durationSeconds 8, not {seconds}.",
                               "parameters.durationSeconds")
    audio = params.get("generateAudio")
    if not isinstance(audio, bool):
        raise invalid_argument("generateAudio is required for Veo 3 models and must be true or false.", "parameters.generateAudio")
    samples = params.get("sampleCount", 1)
    if not isinstance(samples, int) or isinstance(samples, bool) or not 1 <= samples <= MAX_SAMPLES:
        raise invalid_argument(f"sampleCount must be between 1 and {MAX_SAMPLES}.", "parameters.sampleCount")
    seed = params.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= SEED_MAX):
        raise invalid_argument(f"seed must be an integer between 0 and {SEED_MAX}.", "parameters.seed")
    negative = params.get("negativePrompt")
    if negative is not None and not isinstance(negative, str):
        raise invalid_argument("negativePrompt must be a string.", "parameters.negativePrompt")
    person = _choice(params.get("personGeneration", "allow_adult"), "personGeneration", PERSON_GENERATION, model)
    resize = _choice(params.get("resizeMode", "crop"), "resizeMode", RESIZE_MODES, model)
    storage_uri = params.get("storageUri")
    if storage_uri is not None and (not isinstance(storage_uri, str) or not storage_uri.startswith("gs://") or len(storage_uri) < 6):
        raise invalid_argument(f"storageUri must be a gs://bucket/prefix URI, not {storage_uri!r}.", "parameters.storageUri")
    return VeoRequest(
        prompt=prompt, seconds=seconds, aspect_ratio=aspect, resolution=resolution, audio=audio, samples=samples,
        first_frame=first_frame, last_frame=last_frame, reference_images=tuple(references), negative_prompt=negative,
        seed=seed, person_generation=person, resize_mode=resize, storage_uri=storage_uri, video=video, video_uri=video_uri,
    )


def _video(value, model: VeoModel) -> tuple[bytes | None, str | None]:
    """The video an extension continues: its bytes, or its ``gs://`` object name."""
    where = "instances[0].video"
    if not model.extension:
        raise invalid_argument(f"{model.name} does not extend videos.", where)
    if not isinstance(value, dict):
        raise invalid_argument(f"{where} must be an object with bytesBase64Encoded or gcsUri.", where)
    mime = value.get("mimeType")
    if mime is not None and mime != "video/mp4":
        raise invalid_argument(f"{where}.mimeType must be video/mp4, not {mime!r}.", where)
    uri = value.get("gcsUri")
    if uri is not None:
        if not isinstance(uri, str) or not uri.startswith("gs://") or "/" not in uri[5:]:
            raise invalid_argument(f"{where}.gcsUri must be a gs://bucket/object URI, not {uri!r}.", where)
        return None, uri
    data = value.get("bytesBase64Encoded")
    if not isinstance(data, str) or not data:
        raise invalid_argument(f"{where}: bytesBase64Encoded or gcsUri is required.", where)
    try:
        return base64.b64decode(data, validate=True), None
    except binascii.Error:
        raise invalid_argument(f"{where}: bytesBase64Encoded is not base64.", where) from None
