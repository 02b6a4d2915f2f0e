"""The openai-videos dialect: the Videos API on the openai SDK (``client.videos``, ``client.models``).

One class for every endpoint of that shape: api.openai.com, Azure OpenAI v1 (``api-key`` header,
or Microsoft Entra ID tokens from azure-identity, refreshed per request), gateways such as a
LiteLLM proxy, and the simulator. Only the connection differs.

Retries are split by what is safe:
- reads (retrieve, list, download, models) use the SDK's own retries, which honour
  ``retry-after`` and back off with jitter;
- ``create`` is sent with ``max_retries=0``: a blind retry after a lost answer could pay twice.
  Its failures are classified here, and a lost answer becomes ``AmbiguousCreateError``; the
  job list is then searched for the job it may have made (``find_lost_create``), and trusted
  only as far as it shows itself to work.

Every answer is checked before it is kept (rule 7): a job object's fields (an id that is not
empty and is one path segment, a status, Unix times), each malformed one named with the endpoint
and the route; a download's media type, first bytes and length (bounded: an endless answer
ends); the job itself is checked against the request in generation. No credential leaves for
another origin: a redirect of the content to a CDN is followed without the endpoint's key.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any, Literal, Mapping
from urllib.parse import urlsplit

import openai

from ..errors import (
    AmbiguousCreateError,
    JobLostError,
    ModelUnavailableError,
    ModerationBlockedError,
    PermanentProviderError,
    ProviderError,
    RouteNotServedError,
    TransientProviderError,
    UntrustedAnswerError,
)
from .. import stop
from ..errors import EndpointNotConfiguredError
from ..settings import Settings
from .base import CreateRequest, Download, LostCreateSearch, ModelInfo, ModelListUnavailable, VideoJob
from .connection import Connection
from .credentials import entra_token_provider

POLL_AFTER_HEADER = "openai-poll-after-ms"
_CHUNK = 1 << 20
_SNIFF_CHUNK = 1 << 16  # thumbnails are small; a wrong answer is caught after 64 KiB
LIST_PAGE_SIZE = 100
LIST_MAX_PAGES = 50
LIST_CLOCK_SKEW_SECONDS = 120  # the provider's clock against ours, for the search window
_MODEL_GONE_CODES = {"model_not_found", "model_unavailable", "model_deprecated", "model_retired"}
# Azure answers a deployment name it does not know with this code: a configuration mistake
# (the profile's model is not a deployment of that resource), not a retirement.
_DEPLOYMENT_NOT_FOUND = {"DeploymentNotFound", "deployment_not_found"}
# What the content route serves, most wanted first, and nothing else: the clip is checked by
# ffprobe anyway, and a server that has only something else to offer says so with a 406. The
# SDK's own ``application/binary`` is no registered media type, and a strict server (content
# negotiation by the book) answers it 406.
ACCEPT = {
    "video": "video/mp4, application/octet-stream;q=0.5",
    "thumbnail": "image/webp, image/*;q=0.9, application/octet-stream;q=0.5",
    "spritesheet": "image/jpeg, image/*;q=0.9, application/octet-stream;q=0.5",
}
# Where a route answers with one of these, the endpoint does not serve /models at all.
_NO_MODELS_ROUTE = {404, 405, 501}
# The headers that carry an endpoint's credential (Azure's ``api-key`` beside the bearer).
CREDENTIAL_HEADERS = frozenset({"authorization", "api-key"})
JOB_ID_MAX_CHARS = 512
_JOB_ID = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no space: the SDK quotes it into one path segment


def _retry_after(headers) -> float | None:
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) / scale)
            except ValueError:
                continue
    return None


def _error_fields(err: openai.APIStatusError) -> tuple[str, str | None]:
    body = err.body if isinstance(err.body, dict) else {}
    inner = body.get("error") if isinstance(body.get("error"), dict) else body
    message = (inner or {}).get("message") or str(err.message)
    code = (inner or {}).get("code") or getattr(err, "code", None)
    return message, code


def classify(
    err: Exception, *, model: str | None = None, creating: bool = False, where: str | None = None, job_route: bool = False
) -> ProviderError:
    """Map an SDK exception to soraflow's typed errors (docs/architecture.md, rule 6); ``where`` names the endpoint.

    ``job_route``: the request named one job (retrieve, content); only there does a 404 mean
    the job is gone. A 404 on the list or on create says the endpoint does not serve that route.
    """
    if isinstance(err, ProviderError):
        return err
    if isinstance(err, openai.APITimeoutError):
        if creating:
            return AmbiguousCreateError("create timed out after the request was sent", code="timeout")
        return TransientProviderError("request timed out", code="timeout")
    if isinstance(err, openai.APIConnectionError):
        never_sent = type(err.__cause__).__name__ in {"ConnectError", "ConnectTimeout"}
        if creating and not never_sent:
            return AmbiguousCreateError(f"connection lost during create: {err.__cause__ or err}", code="connection")
        return TransientProviderError(f"connection error: {err.__cause__ or err}", code="connection")
    if isinstance(err, openai.APIStatusError):
        message, code = _error_fields(err)
        status = err.status_code
        at = f" at endpoint {where}" if where else ""
        if status == 429:
            return TransientProviderError(message, code=code or "rate_limited", status=status, retry_after=_retry_after(err.response.headers))
        if code in _DEPLOYMENT_NOT_FOUND:
            return PermanentProviderError(
                f"no deployment named {model!r}{at} ({message}); a profile's model must be the name of a "
                "deployment of that Azure resource", code=code, status=status,
            )

        if status >= 500 or status in (408, 409):
            if creating:
                # A 5xx may be answered after the job was accepted; never assume it was not.
                return AmbiguousCreateError(message, code=code or "server_error", status=status)
            return TransientProviderError(message, code=code or "server_error", status=status)
        if code in _MODEL_GONE_CODES or (status == 404 and model and model in message):
            return ModelUnavailableError(model or "?", message, code=code or "model_not_found", status=status)
        if code == "moderation_blocked":
            return ModerationBlockedError(message, code=code, status=status)
        if status == 404 and job_route:
            return JobLostError(message, code=code or "not_found", status=status)
        if status == 404:
            route = f"{err.request.method} {err.request.url.path}" if err.request is not None else "the route"
            return RouteNotServedError(f"endpoint{at or ''} does not serve {route}: {message}", code=code or "not_found", status=status)
        return PermanentProviderError(message, code=code, status=status)
    if isinstance(err, openai.OpenAIError):
        return PermanentProviderError(str(err))
    raise err


def _job(video, where: str, route: str) -> VideoJob:
    """The job as soraflow keeps it, once its fields are shown to make sense. Gateways leave fields
    out (LiteLLM has no ``prompt``), so every field but ``id`` and ``status`` may be missing; the
    checks against the request happen in generation. A field that is there but malformed (an
    empty id, ``created_at: "yesterday"``) raises ``UntrustedAnswerError`` naming the endpoint,
    the route and the field."""
    def bad(field: str, value: Any, allowed: str) -> UntrustedAnswerError:
        shown = repr(value) if not isinstance(value, str) or len(value) <= 80 else repr(value[:80] + "…")
        job = f" job {video_id!r}:" if field != "id" else ""
        return UntrustedAnswerError(f"endpoint {where} answered {route} with{job} {field} {shown}, not {allowed}", code="malformed_answer")

    video_id = getattr(video, "id", None)
    if not isinstance(video_id, str) or not video_id or len(video_id) > JOB_ID_MAX_CHARS or not _JOB_ID.fullmatch(video_id) \
            or video_id in (".", ".."):  # fmt: skip
        raise bad("id", video_id, f"a job id (1-{JOB_ID_MAX_CHARS} printable characters, no space, not . or ..)")
    status = getattr(video, "status", None)
    if not isinstance(status, str) or not status:
        raise bad("status", status, "a status")
    times = {}
    for name in ("created_at", "completed_at", "expires_at"):
        value = getattr(video, name, None)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 2**41):
            raise bad(name, value, "a Unix time in seconds")
        times[name] = int(value) if value is not None else None
    error = getattr(video, "error", None)
    progress = getattr(video, "progress", None)
    model, size, seconds = (getattr(video, name, None) for name in ("model", "size", "seconds"))
    prompt = getattr(video, "prompt", None)
    return VideoJob(
        id=video_id,
        status=status,
        progress=int(progress) if isinstance(progress, (int, float)) and not isinstance(progress, bool) and progress == progress else 0,
        model=str(model) if model else None,
        size=str(size) if size else None,
        seconds=str(seconds) if seconds else None,
        prompt=prompt if isinstance(prompt, str) else None,
        remixed_from=_text(getattr(video, "remixed_from_video_id", None)),
        error_code=_text(getattr(error, "code", None)) if error else None,
        error_message=_text(getattr(error, "message", None)) if error else None,
        **times,
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _said(err: Exception) -> str:
    """An SDK failure in a few words, for a sentence that says what was tried."""
    if isinstance(err, openai.APIStatusError):
        message, _ = _error_fields(err)
        message = " ".join(message.split())
        return f"HTTP {err.status_code} ({message[:160]}{'…' if len(message) > 160 else ''})"
    return f"{type(err).__name__}: {err.__cause__ or err}"


class OpenAIVideosProvider:
    """The Videos API through ``openai.OpenAI``, on one endpoint's connection."""

    dialect = "openai-videos"
    variants: tuple[str, ...] = ("video", "thumbnail", "spritesheet")

    def __init__(self, connection: Connection, settings: Settings, *, client: openai.OpenAI | None = None):
        self.connection = connection
        self.settings = settings
        self.where = connection.where
        api_key, self._headers = _auth(connection)
        self._client = client or openai.OpenAI(
            # Always explicit: the SDK would otherwise read OPENAI_API_KEY and send OpenAI's key
            # to whatever endpoint this is.
            api_key=api_key,
            base_url=connection.base_url,
            timeout=settings.request_timeout_seconds,
            max_retries=settings.transient_retries,
            # The SDK's own defaults (DefaultHttpxClient: its timeouts, pool, redirects followed)
            # and one hook: a request for another origin carries no credential. httpx drops
            # Authorization on a redirect to another origin, but not Azure's ``api-key`` header.
            http_client=openai.DefaultHttpxClient(event_hooks={"request": [credentials_stay_at(connection.base_url)]}),
        )
        self._create_client = self._client.with_options(max_retries=0)

    def _classify(self, err: Exception, **kw) -> ProviderError:
        return classify(err, where=self.where, **kw)

    # --- writes ---------------------------------------------------------------------------
    def create(
        self,
        *,
        model: str,
        size: str,
        seconds: int,
        prompt: str,
        reference: Path | None = None,
        audio: bool = True,
        reference_images: tuple[Path, ...] = (),
        seed: int | None = None,
    ) -> VideoJob:
        # ``audio`` is not sent: the Videos API has no sound switch (Sora always makes sound;
        # its profiles say audio: always, so the plan never asks for a silent clip here).
        # ``seed`` is not sent either: the Videos API takes none. Each take is the same request
        # made again (its take number is in the clip key), and the model makes another video.
        if reference_images:
            # Sora's characters are made from a video, not an image: a cast's images stay out
            # (its profiles take no reference images, so the plan never sends them here).
            raise PermanentProviderError(f"endpoint {self.where} takes no reference images", code="invalid_request")
        kwargs = dict(model=model, size=size, seconds=str(seconds), prompt=prompt, extra_headers=self._headers)
        try:
            if reference is not None:
                mime = mimetypes.guess_type(reference.name)[0] or "image/png"
                with open(reference, "rb") as fh:
                    video = self._create_client.videos.create(input_reference=(reference.name, fh, mime), **kwargs)
            else:
                video = self._create_client.videos.create(**kwargs)
        except Exception as err:  # noqa: BLE001 - classified, never swallowed
            raise self._classify(err, model=model, creating=True) from err
        return self._created(video, "POST /videos")

    def _created(self, video, route: str) -> VideoJob:
        """A create's answer as a job; one that cannot be trusted is a lost answer (the create may
        have made a job: it is searched for, never made again on a guess)."""
        try:
            return _job(video, self.where, route)
        except UntrustedAnswerError as err:
            raise AmbiguousCreateError(f"{err.provider_message}; the create may have made a job", code="malformed_answer") from err

    def extend(self, *, source_job_id: str, model: str, size: str, seconds: int, prompt: str, audio: bool = True) -> VideoJob:
        """``POST /videos/extensions``: ``seconds`` more after a completed video; the new job's
        video plays its source, then the new seconds (``audio`` is not sent, as in ``create``)."""
        try:
            # openai 3.x types ``video`` as a file or ``{"id": ...}`` but its form encoder takes
            # files only (a dict raises before sending); the reference goes in ``extra_body``,
            # which the SDK sends as the form field ``video[id]``, its encoding of any object.
            video = self._create_client.videos.extend(
                prompt=prompt, seconds=str(seconds), video=openai.omit, extra_body={"video": {"id": source_job_id}},
                extra_headers=self._headers,
            )
        except Exception as err:  # noqa: BLE001 - classified, never swallowed
            raise self._classify(err, model=model, creating=True) from err
        return self._created(video, "POST /videos/extensions")

    def remix(self, *, source_job_id: str, model: str, prompt: str) -> VideoJob:
        """``POST /videos/{id}/remix``: a new take of a completed video with another prompt."""
        try:
            video = self._create_client.videos.remix(source_job_id, prompt=prompt, extra_headers=self._headers)
        except Exception as err:  # noqa: BLE001
            raise self._classify(err, model=model, creating=True) from err
        return self._created(video, "POST /videos/{id}/remix")

    # --- reads ----------------------------------------------------------------------------
    def retrieve(self, job_id: str) -> tuple[VideoJob, float | None]:
        try:
            raw = self._client.videos.with_raw_response.retrieve(job_id, extra_headers=self._headers)
            video = raw.parse()
        except Exception as err:  # noqa: BLE001
            raise self._classify(err, job_route=True) from err
        hint = raw.headers.get(POLL_AFTER_HEADER)
        try:
            poll_after = float(hint) / 1000.0 if hint else None
        except ValueError:
            poll_after = None
        return _job(video, self.where, f"GET /videos/{job_id}"), poll_after

    def find_lost_create(
        self, request: CreateRequest, *, since: float, exclude: set[str], witnesses: Mapping[str, str]
    ) -> LostCreateSearch:
        """Search the job list, newest first, back to ``since`` (less the clock skew).

        The Videos API has no idempotency key, so the list is the only proof there is, and it
        is trusted only as far as it shows itself to work: it must answer, keep ``order=desc``
        (a newer job never after an older one), honour ``after`` (no job twice), carry each
        job's ``prompt`` (the field that tells one request from another), and show every job
        this ledger recorded since then with the prompt that was sent. Gateways fail each of
        these (LiteLLM drops ``prompt`` and may not serve the list at all). A list failing in a
        way that may pass (429, 5xx, a reset) raises ``TransientProviderError``: search later.
        """
        window_start = since - LIST_CLOCK_SKEW_SECONDS
        where = f"GET /videos at endpoint {self.where}"
        seen: set[str] = set()
        matches: list[VideoJob] = []
        newest_first_shown = False
        previous: int | None = None
        try:
            page = self._client.videos.list(order="desc", limit=LIST_PAGE_SIZE, extra_headers=self._headers)
            for number in range(1, LIST_MAX_PAGES + 1):
                for video in page.data:
                    job = _job(video, self.where, "GET /videos")
                    if job.id in seen:
                        return _unknown(f"{where} ignores `after`: page {number} repeats job {job.id}")
                    seen.add(job.id)
                    if job.created_at is None:
                        return _unknown(f"{where} lists job {job.id} without `created_at`")
                    if previous is not None and job.created_at > previous:
                        return _unknown(f"{where} ignores `order=desc`: job {job.id} is newer than the one before it")
                    newest_first_shown |= previous is not None and job.created_at < previous
                    previous = job.created_at
                    if job.created_at < window_start:
                        continue
                    if not job.prompt:
                        return _unknown(f"{where} lists job {job.id} without its prompt, so no job can be told from another")
                    if job.id in witnesses and hashlib.sha256(job.prompt.encode()).hexdigest() != witnesses[job.id]:
                        return _unknown(f"{where} shows job {job.id} with another prompt than the one sent")
                    if job.id not in exclude and _same_request(job, request):
                        matches.append(job)
                # Older pages can be skipped only once the list has shown it is newest first.
                past_window = previous is not None and previous < window_start and newest_first_shown
                if past_window or not page.has_next_page():
                    break
                page = page.get_next_page()
            else:
                return _unknown(f"{where}: more than {LIST_MAX_PAGES * LIST_PAGE_SIZE} jobs since the create; not searched to the end")
        except UntrustedAnswerError as err:  # a malformed entry: the list proves nothing
            return _unknown(err.provider_message)
        except Exception as err:  # noqa: BLE001 - a list that fails proves nothing either way
            if isinstance(said := self._classify(err), TransientProviderError):
                raise said from err  # it may answer later: search again then
            return _unknown(f"{where} answered {_said(err)}")
        if missing := sorted(set(witnesses) - seen):
            return _unknown(f"{where} does not show job(s) {', '.join(missing[:3])} recorded here since the create")
        window = f"{len(seen)} job(s) listed back to {time.strftime('%H:%M:%S UTC', time.gmtime(window_start))}"
        if not matches:
            return LostCreateSearch(outcome="absent", tried=f"{where}: {window}, none with this prompt, size and length")
        same_model = [j for j in matches if _model_name(j.model) in (None, _model_name(request.model))]
        if not same_model:
            job = matches[0]
            return _unknown(f"{where}: job {job.id} has this prompt, size and length but reports model {job.model}, not {request.model}")
        job = min(same_model, key=lambda j: (j.created_at or 0, j.id))
        return LostCreateSearch(outcome="found", job=job, tried=f"{where}: {window}; job {job.id} has this prompt, size and length")

    def download(
        self, job_id: str, dest: Path, *, variant: Literal["video", "thumbnail", "spritesheet"] = "video"
    ) -> Download:
        """Stream the content to ``dest`` (via a temp file); never holds the clip in memory.

        The answer is checked before it is kept: its media type and its first bytes must be what
        the variant is (an MP4 for the video, an image for the others). A gateway that ignores
        ``variant`` answers a thumbnail request with the whole MP4: its headers say so, the body
        is never read, and this endpoint is asked for video only from then on.
        """
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.part")  # never shared by two downloads
        digest = hashlib.sha256()
        size = 0
        headers = {**self._headers, "Accept": ACCEPT[variant]}
        try:
            with self._client.videos.with_streaming_response.download_content(job_id, variant=variant, extra_headers=headers) as resp:
                try:
                    _check_media_type(resp.headers.get("content-type"), variant, job_id, self.where)
                except UntrustedAnswerError:
                    if variant != "video" and _media_kind(resp.headers.get("content-type")).startswith("video/"):
                        self.variants = ("video",)  # it ignores `variant` (LiteLLM does): ask for video only
                    raise
                expected = resp.headers.get("content-length")
                limit, deadline = self.settings.max_clip_bytes, time.monotonic() + self.settings.download_timeout_seconds
                if expected is not None and expected.isdigit() and int(expected) > limit:
                    raise self._too_long(job_id, variant, f"announces {int(expected)} bytes")
                with open(tmp, "wb") as out:
                    for chunk in resp.iter_bytes(_CHUNK if variant == "video" else _SNIFF_CHUNK):
                        if size == 0:
                            _check_magic(chunk, variant, f"{variant} of job {job_id} at endpoint {self.where}")
                        stop.check(f"the download of job {job_id} was not finished")
                        out.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                        if size > limit:
                            raise self._too_long(job_id, variant, f"sent more than {limit} bytes")
                        if time.monotonic() > deadline:
                            raise self._too_long(job_id, variant, f"was still sending after {self.settings.download_timeout_seconds:g} s "
                                                 "(SORAFLOW_DOWNLOAD_TIMEOUT_SECONDS)")  # fmt: skip
            if expected is not None and int(expected) != size:
                raise TransientProviderError(
                    f"download of {job_id} ({variant}) from {self.where} was truncated: {size} of {expected} bytes", code="truncated"
                )
            os.replace(tmp, dest)
        except Exception as err:  # noqa: BLE001
            tmp.unlink(missing_ok=True)
            if isinstance(err, ProviderError):
                raise
            if type(err).__name__ in {"RemoteProtocolError", "ReadError", "ReadTimeout"}:
                raise TransientProviderError(f"download of {job_id} ({variant}) from {self.where} broke off: {err}", code="truncated") from err
            if isinstance(err, openai.APIStatusError) and err.status_code == 406:
                raise PermanentProviderError(
                    f"endpoint {self.where} refused to send the {variant} of {job_id} in any format soraflow takes "
                    f"(406 Not Acceptable: {_error_fields(err)[0]}); soraflow asked for Accept: {ACCEPT[variant]}",
                    code="not_acceptable", status=406,
                ) from err
            raise self._classify(err, job_route=True) from err
        return Download(path=dest, size=size, sha256=digest.hexdigest())

    def _too_long(self, job_id: str, variant: str, what: str) -> UntrustedAnswerError:
        return UntrustedAnswerError(
            f"endpoint {self.where} {what} for the {variant} of job {job_id}: more than a clip (SORAFLOW_MAX_CLIP_BYTES="
            f"{self.settings.max_clip_bytes}); refused. The job is kept: a rerun downloads it again", code="too_long",
        )

    def list_models(self) -> list[ModelInfo]:
        """What ``GET /models`` lists; ModelListUnavailable when the endpoint serves no such route."""
        if not self.connection.endpoint.models_route and not self.connection.route.simulated:
            raise ModelListUnavailable(f"endpoint {self.where} does not serve /models (models_route: false)", code="no_models_route")
        try:
            raw = self._client.models.with_raw_response.list(extra_headers=self._headers)
            kind = _media_kind(raw.headers.get("content-type"))
            if kind != "application/json" and not kind.endswith("+json"):
                raise UntrustedAnswerError(
                    f"endpoint {self.where} answered GET /models with {kind or 'no content type'}, not a JSON list of models "
                    "(is its base URL the API's, ending in /v1?)", code="malformed_answer",
                )
            try:
                models = list(raw.parse())
            except (AttributeError, TypeError, ValueError) as err:  # JSON, but not the list's shape
                raise UntrustedAnswerError(f"endpoint {self.where} answered GET /models with JSON that is not a list of "
                                           f"models ({type(err).__name__})", code="malformed_answer") from None  # fmt: skip
            for m in models:
                if not isinstance(getattr(m, "id", None), str) or not m.id:
                    raise UntrustedAnswerError(f"endpoint {self.where} answered GET /models with an entry whose id is "
                                               f"{getattr(m, 'id', None)!r}, not a model name", code="malformed_answer")  # fmt: skip
        except openai.APIStatusError as err:
            if err.status_code in _NO_MODELS_ROUTE:
                raise ModelListUnavailable(f"endpoint {self.where} does not serve /models (HTTP {err.status_code})",
                                           code="no_models_route", status=err.status_code) from err
            raise self._classify(err) from err
        except Exception as err:  # noqa: BLE001
            raise self._classify(err) from err
        return [
            ModelInfo(
                id=m.id,
                shutdown_date=str(getattr(m, "shutdown_date", None) or (m.model_extra or {}).get("shutdown_date") or "") or None,
                owned_by=getattr(m, "owned_by", None),
            )
            for m in models
        ]

    def model_info(self, model: str) -> ModelInfo | None:
        """What ``GET /models`` says of ``model`` (None: not listed). The list, not
        ``GET /models/{id}``: only the list tells a model that is gone from a route that is not served."""
        return next((m for m in self.list_models() if m.id == model), None)


def _media_kind(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def _check_media_type(content_type: str | None, variant: str, job_id: str, where: str) -> None:
    """Refuse content of another kind than asked (a gateway that ignores ``variant`` answers a
    thumbnail with the video), before a byte of it is kept. No type at all is let through: the
    first bytes are checked (``_check_magic``), and the clip by ffprobe after the download."""
    if not content_type:
        return
    got = _media_kind(content_type)
    wanted = [m.split(";")[0].strip().lower() for m in ACCEPT[variant].split(",")]
    if not any(got == w or (w.endswith("/*") and got.startswith(w[:-1])) for w in wanted):
        raise UntrustedAnswerError(
            f"endpoint {where} answered the {variant} of {job_id} with {got}, not one of {', '.join(wanted)} "
            f"(an endpoint that ignores the content variant sends the video for every variant)",
            code="wrong_media_type",
        )


def _check_magic(head: bytes, variant: str, what: str) -> None:
    """The first bytes must be what the variant is, whatever the content type said."""
    if variant == "video":
        ok = head[4:8] == b"ftyp"  # an ISO base media file (MP4) starts with its ftyp box
    else:
        ok = head[:3] == b"\xff\xd8\xff" or head[:8] == b"\x89PNG\r\n\x1a\n" or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
    if not ok:
        found = "an MP4" if head[4:8] == b"ftyp" else "neither an MP4 nor an image"
        raise UntrustedAnswerError(f"the {what} is {found}, not {'an MP4' if variant == 'video' else 'an image'}", code="wrong_content")


def _unknown(tried: str) -> LostCreateSearch:
    return LostCreateSearch(outcome="unknown", tried=tried)


def _model_name(model: str | None) -> str | None:
    """``openai/sora-2`` and ``sora-2`` name one model: gateways answer with either."""
    return model.rsplit("/", 1)[-1] if model else None


def _same_request(job: VideoJob, request: CreateRequest) -> bool:
    # A failed job is still the one the create made: adopted, it reports its failure.
    return job.prompt == request.prompt and job.size in (None, request.size) and job.seconds in (None, str(request.seconds))


def _auth(connection: Connection) -> tuple[str, dict]:
    """The SDK's ``api_key`` and the headers every request adds, for the credential the
    endpoint's entry names (resolved by ``connect``: providers/credentials.py)."""
    endpoint, key = connection.endpoint, connection.api_key
    auth = "bearer" if connection.route.simulated else endpoint.effective_auth
    if auth == "entra-id":
        # A token provider, called by the SDK before every request; azure-identity caches the
        # token and refreshes it before it expires. No token is ever kept in the environment.
        return entra_token_provider(endpoint.entra_scope, connection.where), {}
    if auth == "none":
        # The SDK insists on a key at construction; this placeholder is never sent.
        return "unused", {"Authorization": openai.Omit()}
    if not key:
        raise EndpointNotConfiguredError(
            f"endpoint {connection.where} has no key: set {endpoint.what_to_set()}"
        )
    if auth == "api-key":
        # Azure's key header, and no bearer beside it. Per request: the SDK drops an omitted
        # Authorization from default headers before it checks that a credential is there.
        return key, {"api-key": key, "Authorization": openai.Omit()}
    return key, {}


def _origin(scheme: str, host: str | None, port: int | None) -> tuple[str, str, int]:
    scheme = scheme.lower()
    return scheme, (host or "").lower(), port or {"http": 80, "https": 443}.get(scheme, 0)


def credentials_stay_at(base_url: str | None):
    """An httpx request hook: a request to any origin but ``base_url``'s carries none of the
    endpoint's credential headers (a content answer redirected to a CDN, or anywhere else).

    httpx calls request hooks before every request it sends, redirects included; its own redirect
    handling drops ``Authorization`` across origins but keeps every other header, so Azure's
    ``api-key`` followed a redirect to the other host."""
    home = urlsplit(base_url or "")
    own = _origin(home.scheme, home.hostname, home.port)

    def hook(request) -> None:
        url = request.url
        if _origin(url.scheme, url.host, url.port) != own:
            for name in CREDENTIAL_HEADERS:
                request.headers.pop(name, None)

    return hook

