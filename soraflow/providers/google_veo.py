"""Veo on Vertex AI through the google-genai SDK (``client.models.generate_videos``,
``client.operations.get``): the second dialect.

Configured by its endpoint's entry alone (providers/credentials.py): express mode with the API
key the entry names, or a project and location with Application Default Credentials whose
every token is registered as a secret; never a key from a variable the entry does not name
(google-genai reads ``GOOGLE_API_KEY`` / ``GEMINI_API_KEY`` and ``GOOGLE_CLOUD_PROJECT`` itself
when it is not given them: it is always given explicit values, which win). Another base URL (a
gateway, the simulator) with ``base_url`` or ``GOOGLE_VERTEX_BASE_URL``. google-genai 3.6
serves ``generate_videos`` on Vertex AI only, so ``vertexai`` is always on.

What the dialect allows, and what follows for money (docs/architecture.md, rules 3 and 4):
- the operation name is the job id, recorded by the ledger the moment ``create`` returns;
- Veo has no list of operations and no request id: a create whose answer is lost after it was
  sent (a timeout, a reset, a 5xx) cannot be found again, so it is *in doubt*
  (``find_lost_create`` says so) and is never sent again on a guess. A 429 and a connection
  that never opened are clean refusals: nothing was created;
- ``create`` is sent with the SDK's retries off (``attempts=1``); reads (poll) use the SDK's
  retries (tenacity, exponential backoff with jitter, on 408/429/5xx and connect/timeouts);
- a quota refusal (429 RESOURCE_EXHAUSTED) is transient and carries its ``RetryInfo`` delay;
- a safety-filtered result (done, no video, ``raiMediaFilteredReasons``) is a permanent failure
  naming the reasons.

The video comes inline (``bytesBase64Encoded``: the SDK decodes the whole answer in memory,
as the wire format demands) or, when ``output_gcs_uri`` is set, as a ``gs://`` object streamed
to disk by google-cloud-storage with its checksum verified. Set an output bucket for 4k clips.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Literal, Mapping

from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from ..errors import (
    AmbiguousCreateError,
    EndpointNotConfiguredError,
    JobLostError,
    ModelUnavailableError,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
)
from ..models import SIZE_VOCABULARY, aspect_and_resolution, named_sizes
from ..redaction import redact_url
from .base import CreateRequest, Download, LostCreateSearch, ModelInfo, VideoJob

_CHUNK = 1 << 20
SAFETY_FILTERED = "safety_filtered"
_RETRY_DELAY = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")
_RETRYABLE_STATUS = [408, 429, 500, 502, 503, 504]


def _wire_errors(*names: str) -> tuple[type[BaseException], ...]:
    """httpx exception classes and their twins in httpx2, which google-genai uses when installed."""
    import httpx

    found = [getattr(httpx, n) for n in names]
    try:
        import httpx2
    except ImportError:  # pragma: no cover - httpx2 comes with google-genai 3.6
        return tuple(found)
    return tuple(found + [getattr(httpx2, n) for n in names])


_NEVER_SENT = _wire_errors("ConnectError", "ConnectTimeout", "PoolTimeout")
_WIRE = _wire_errors("TransportError")


def veo_format(size: str) -> tuple[str, str]:
    """``(aspect_ratio, resolution)`` of a size. Which sizes a model makes is its profile's to
    say (refused at validation); this only translates, and refuses what the wire cannot name."""
    aspect, resolution = aspect_and_resolution(size)
    aspects, resolutions = SIZE_VOCABULARY[GoogleVeoProvider.dialect]
    if aspect not in aspects or resolution not in resolutions:
        raise PermanentProviderError(
            f"Veo names no {size} clips ({aspect} at {resolution}); sizes it can name: "
            + ", ".join(named_sizes(GoogleVeoProvider.dialect)),
            code="invalid_size",
        )
    return aspect, resolution


def retry_delay(err: genai_errors.APIError) -> float | None:
    """The wait a refusal asks for: its ``google.rpc.RetryInfo`` delay, else ``Retry-After``."""
    body = err.details if isinstance(err.details, dict) else {}
    for detail in (body.get("error") or {}).get("details") or []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            match = _RETRY_DELAY.match(str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    headers = getattr(err.response, "headers", None) or {}
    try:
        return max(0.0, float(headers.get("retry-after"))) if headers.get("retry-after") else None
    except ValueError:
        return None


def classify(err: Exception, *, model: str | None = None, creating: bool = False) -> ProviderError:
    """Map what google-genai raises to soraflow's typed errors."""
    if isinstance(err, ProviderError):
        return err
    if isinstance(err, genai_errors.APIError):
        message = err.message or str(err)
        code = (err.status or "").lower() or None
        if err.code == 429:
            return TransientProviderError(message, code=code or "resource_exhausted", status=429, retry_after=retry_delay(err))
        if err.code >= 500 or err.code == 408:
            if creating:  # answered after the request was sent: the operation may exist
                return AmbiguousCreateError(message, code=code or "server_error", status=err.code)
            return TransientProviderError(message, code=code or "server_error", status=err.code)
        if err.code == 404 and "Publisher Model" in message:
            return ModelUnavailableError(model or "?", message, code="model_not_found", status=404)
        if err.code == 404 and not creating:
            return JobLostError(message, code=code or "not_found", status=404)
        return PermanentProviderError(message, code=code, status=err.code)
    if isinstance(err, _NEVER_SENT):
        return TransientProviderError(f"could not reach the endpoint: {err}", code="connection")
    if isinstance(err, _WIRE):
        if creating:
            return AmbiguousCreateError(f"the answer to the create was lost: {type(err).__name__}: {err}", code="connection")
        return TransientProviderError(f"{type(err).__name__}: {err}", code="connection")
    from google.auth import exceptions as auth_errors

    if isinstance(err, auth_errors.TransportError):  # fetching a token failed: nothing was sent
        return TransientProviderError(f"could not get an access token: {err}", code="auth_transport")
    if isinstance(err, auth_errors.GoogleAuthError):
        return PermanentProviderError(f"Google credentials: {err}", code="credentials")
    if isinstance(err, ValueError):  # the SDK refuses a request before sending it
        return PermanentProviderError(str(err), code="invalid_request")
    raise err


def _job(operation: types.GenerateVideosOperation) -> VideoJob:
    """What soraflow keeps of an operation; a finished one is checked before it is trusted."""
    name = operation.name or ""
    model = name.split("/models/", 1)[1].split("/", 1)[0] if "/models/" in name else None
    if not operation.done:
        return VideoJob(id=name, status="in_progress", model=model)
    if operation.error:
        error = operation.error
        return VideoJob(id=name, status="failed", model=model, error_code=str(error.get("status") or error.get("code") or "failed"),
                        error_message=str(error.get("message") or error))
    result = operation.response or operation.result
    videos = [v.video for v in (result.generated_videos or []) if v.video] if result else []
    if videos and all(v.video_bytes or v.uri for v in videos):
        return VideoJob(id=name, status="completed", progress=100, model=model)
    reasons = list(result.rai_media_filtered_reasons or []) if result else []
    if result and (result.rai_media_filtered_count or reasons):
        message = "Veo's safety filter removed the video: " + ("; ".join(reasons) or "no reason given")
        return VideoJob(id=name, status="failed", model=model, error_code=SAFETY_FILTERED, error_message=message)
    return VideoJob(id=name, status="failed", model=model, error_code="empty_result",
                    error_message="the operation finished without a video and without a filter reason")


class GoogleVeoProvider:
    """Veo through ``google.genai.Client(vertexai=True)``."""

    dialect = "google-genai"
    variants: tuple[str, ...] = ("video",)  # Veo returns no thumbnail or spritesheet

    def __init__(
        self,
        *,
        api_key: str | None = None,
        project: str | None = None,
        location: str | None = None,
        base_url: str | None = None,
        credentials=None,
        timeout_seconds: float = 60.0,
        read_attempts: int = 7,
        retry_initial_delay: float = 1.0,
        retry_max_delay: float = 60.0,
        output_gcs_uri: str | None = None,
        storage_endpoint: str | None = None,
        client: genai.Client | None = None,
        where: str | None = None,
    ):
        if not api_key:
            # Application Default Credentials, passed explicitly (their tokens registered as
            # secrets): with credentials given, google-genai drops a key from its environment.
            # Project and location passed too: with a custom base URL the SDK drops them when
            # they come from its environment.
            if credentials is None and client is None:
                from google.auth.exceptions import DefaultCredentialsError

                from .credentials import adc_credentials

                try:
                    credentials = adc_credentials()
                except DefaultCredentialsError as err:
                    raise EndpointNotConfiguredError(
                        f"endpoint {where or 'Vertex AI'} uses Application Default Credentials, and there are none here "
                        f"({err}): run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS"
                    ) from None
            location = location or "us-central1"
        retries = types.HttpRetryOptions(
            attempts=max(1, read_attempts), initial_delay=retry_initial_delay, max_delay=retry_max_delay,
            http_status_codes=_RETRYABLE_STATUS,
        )
        self._client = client or genai.Client(
            vertexai=True,
            api_key=api_key,
            project=None if api_key else project,
            location=None if api_key else location,
            credentials=credentials,
            http_options=types.HttpOptions(
                base_url=base_url or os.environ.get("GOOGLE_VERTEX_BASE_URL") or None,
                timeout=int(timeout_seconds * 1000),
                retry_options=retries,
            ),
        )
        # The create alone goes out once: a blind SDK retry after a lost answer could pay twice.
        self._once = types.HttpOptions(retry_options=types.HttpRetryOptions(attempts=1))
        url = base_url or os.environ.get("GOOGLE_VERTEX_BASE_URL")
        self.where = where or (redact_url(url) if url else ("Vertex AI (express mode)" if api_key else f"Vertex AI ({project}, {location})"))
        self.output_gcs_uri = output_gcs_uri
        self.storage_endpoint = storage_endpoint
        self._credentials = credentials
        self._project = project

    # --- writes ---------------------------------------------------------------------------
    def create(
        self,
        *,
        model: str,
        size: str,
        seconds: int,
        prompt: str,
        reference: Path | None = None,
        last_frame: Path | None = None,
        reference_images: tuple[Path, ...] = (),
        negative_prompt: str | None = None,
        seed: int | None = None,
        audio: bool = False,
        person_generation: str | None = None,
    ) -> VideoJob:
        """Start one operation; ``reference`` is the first frame. Returns at once (not done)."""
        config = self._config(
            size, seconds, audio,
            negative_prompt=negative_prompt,
            seed=seed,
            person_generation=person_generation,
            last_frame=_image(last_frame) if last_frame else None,
            reference_images=[types.VideoGenerationReferenceImage(image=_image(p), reference_type="asset") for p in reference_images] or None,
        )  # fmt: skip
        source = types.GenerateVideosSource(prompt=prompt, image=_image(reference) if reference else None)
        return self._generate(model, source, config)

    def _config(self, size: str, seconds: int, audio: bool, **inputs) -> types.GenerateVideosConfig:
        """One video of ``size`` (aspect ratio + resolution) and ``seconds``, sound as asked, sent once."""
        aspect_ratio, resolution = veo_format(size)
        return types.GenerateVideosConfig(
            number_of_videos=1,
            duration_seconds=seconds,
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            generate_audio=audio,
            output_gcs_uri=self.output_gcs_uri,
            http_options=self._once,
            **inputs,
        )

    def _generate(self, model: str, source: types.GenerateVideosSource, config: types.GenerateVideosConfig) -> VideoJob:
        """The one paid request: sent once, its answer checked before the ledger keeps it."""
        try:
            operation = self._client.models.generate_videos(model=model, source=source, config=config)
        except Exception as err:  # noqa: BLE001 - classified, never swallowed
            raise classify(err, model=model, creating=True) from err
        job = _job(operation)
        if f"/models/{model}/operations/" not in job.id:
            # Accepted (a 200) but with no usable name: it may be paid for and cannot be polled.
            raise AmbiguousCreateError(f"the create was answered without a usable operation name: {job.id!r}", code="bad_answer")
        return job

    def extend(self, *, source_job_id: str, model: str, size: str, seconds: int, prompt: str, audio: bool = False) -> VideoJob:
        """Veo's video extension: ``generate_videos`` with the finished operation's video as
        ``video`` (its Cloud Storage object where it has one, else its bytes, as the SDK hands it
        back). The new operation's video plays the source, then ``seconds`` more (Veo: 7)."""
        source = self._operation(source_job_id)
        if _job(source).status != "completed":
            raise PermanentProviderError(f"operation {source_job_id} has no video to extend", code="no_source")
        video = (source.response or source.result).generated_videos[0].video
        config = self._config(size, seconds, audio)
        given = types.Video(uri=video.uri, mime_type=video.mime_type or "video/mp4") if video.uri else video
        return self._generate(model, types.GenerateVideosSource(prompt=prompt, video=given), config)

    def remix(self, *, source_job_id: str, model: str, prompt: str) -> VideoJob:
        raise PermanentProviderError(f"Veo makes no remixes (endpoint {self.where})", code="not_supported")

    # --- reads ----------------------------------------------------------------------------
    def _operation(self, job_id: str) -> types.GenerateVideosOperation:
        try:
            return self._client.operations.get(types.GenerateVideosOperation(name=job_id))
        except Exception as err:  # noqa: BLE001
            raise classify(err) from err

    def retrieve(self, job_id: str) -> tuple[VideoJob, float | None]:
        """The operation now; Veo gives no poll-after hint and no progress."""
        return _job(self._operation(job_id)), None

    def find_lost_create(
        self, request: CreateRequest, *, since: float, exclude: set[str], witnesses: Mapping[str, str]
    ) -> LostCreateSearch:
        """Veo cannot say: it lists no operations and takes no request id (rule 4: in doubt)."""
        return LostCreateSearch(
            outcome="unknown",
            tried=f"Veo lists no operations and takes no request id, so nothing can show whether it made one; look for "
            f"a Vertex AI operation of model {request.model} (or a charge) from that time",
        )

    def download(self, job_id: str, dest: Path, *, variant: Literal["video", "thumbnail", "spritesheet"] = "video") -> Download:
        """The finished video to ``dest`` (via a temp file), checked by size and sha256."""
        if variant not in self.variants:
            raise PermanentProviderError(f"Veo returns no {variant}", code="no_variant")
        operation = self._operation(job_id)
        job = _job(operation)
        if job.status != "completed":
            raise PermanentProviderError(f"operation {job_id} has no video ({job.status}: {job.error_message or 'not done'})",
                                         code=job.error_code or "not_ready")
        video = (operation.response or operation.result).generated_videos[0].video
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
        try:
            if video.video_bytes:
                tmp.write_bytes(video.video_bytes)
            else:
                self._download_gcs(video.uri, tmp)
            digest, size = hashlib.sha256(), 0
            with open(tmp, "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
            os.replace(tmp, dest)
        except Exception as err:  # noqa: BLE001
            tmp.unlink(missing_ok=True)
            if isinstance(err, ProviderError):
                raise
            raise TransientProviderError(f"download of {job_id} failed: {type(err).__name__}: {err}", code="download") from err
        return Download(path=dest, size=size, sha256=digest.hexdigest())

    def _download_gcs(self, uri: str | None, dest: Path) -> None:
        """Stream a ``gs://`` object to ``dest``; google-cloud-storage checks its CRC32C/MD5."""
        from google.cloud import storage

        if not uri or not uri.startswith("gs://") or "/" not in uri[5:]:
            raise PermanentProviderError(f"the operation's video is neither inline nor a gs:// object: {uri!r}", code="bad_answer")
        bucket, _, name = uri[5:].partition("/")
        options = {"api_endpoint": self.storage_endpoint} if self.storage_endpoint else None
        credentials = self._credentials
        if credentials is None and self.storage_endpoint:
            from google.auth.credentials import AnonymousCredentials

            credentials = AnonymousCredentials()
        gcs = storage.Client(project=self._project or "soraflow", credentials=credentials, client_options=options)
        try:
            gcs.bucket(bucket).blob(name).download_to_filename(str(dest))
        except Exception as err:  # noqa: BLE001
            code = getattr(err, "code", None)
            if code == 404:
                raise JobLostError(f"{uri} is not in Cloud Storage", code="not_found", status=404) from err
            raise

    def list_models(self) -> list[ModelInfo]:
        """Veo's models are not listed by the Vertex AI model garden API the SDK uses; the watch
        asks for each profile's model by name (``model_info``)."""
        return []

    def model_info(self, model: str) -> ModelInfo | None:
        """The publisher model, or None when the endpoint answers that it is gone."""
        try:
            found = self._client.models.get(model=model)
        except Exception as err:  # noqa: BLE001
            error = classify(err, model=model)
            if isinstance(error, (ModelUnavailableError, JobLostError)):
                return None
            raise error from err
        return ModelInfo(id=model, owned_by="google", shutdown_date=None) if found else None


def _image(path: Path) -> types.Image:
    mime = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}.get(path.suffix.lower(), "image/png")
    return types.Image(image_bytes=path.read_bytes(), mime_type=mime)
