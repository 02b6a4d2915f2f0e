"""The fal dialect: fal's queue on the fal-client SDK (``SyncClient.submit``, ``status``,
``result``, ``cancel``, ``upload_file``), for every endpoint fal serves behind one key.

What a create sends is its profile's ``arguments:`` table (models/arguments.py): the same clip
is ``{"duration": "5", "aspect_ratio": "16:9"}`` at Kling and ``{"duration": "8s",
"resolution": "720p"}`` at Veo on fal. The job id is ``{endpoint_id}/requests/{request_id}``:
fal's own path to the request, which names the endpoint that status and result need.

Never paying twice (docs/architecture.md, rules 3, 4 and 7; docs/fal.md):
- fal-client resends a POST up to 10 times after a timeout, a reset, a 408/409/429 or an
  ingress 5xx (``_maybe_retry_request``), and fal has no idempotency key: one lost answer would
  buy up to ten videos. The client given to the SDK (``_SdkClient``) sends through a transport
  (``FalTransport``) that raises ``SubmitNotResent`` (not an ``httpx.HTTPError``, so the SDK's
  loop lets it through at once) for a queue POST that fails or is refused; reads keep the SDK's
  retries. A connection that never opened, and a 429, are clean refusals (nothing was queued);
  anything after the request may have arrived is a lost answer;
- a lost answer is looked up in fal's request history (``find_lost_create``): a request with
  this clip's arguments since the create is adopted; "absent" is said only when the history
  is shown to be current and enough time has passed for any request then to have finished
  and been listed; an unreachable or refused history leaves the clip in doubt;
- ``status()`` comes before ``result()`` (``result()`` polls status ten times a second until
  done); there is no FAILED status: ``Completed.error`` and ``FalClientHTTPError`` from the
  result are failures. Every answer is checked: a request id that is no uuid, a result
  without a video URL at the profile's path, a download that is no MP4.

Where fal's hosts are: without ``base_url`` fal-client's own (fal.run, rest.fal.ai, which
``FAL_QUEUE_RUN_HOST`` may move); with it, the transport sends the SDK's requests for those
hosts to ``base_url`` (the simulator, a proxy) - whatever fal_client read at its import. Images
go up through fal's storage upload (``upload_file`` to repository ``fal``: the SDK's storage
path that goes through the client it is given, so the same transport serves it).
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import ssl
import time
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Mapping
from urllib.parse import urlsplit

import fal_client
import httpx
from fal_client import client as fal_sdk

from ..errors import (
    AmbiguousCreateError,
    JobLostError,
    ModelUnavailableError,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
    UntrustedAnswerError,
)
from ..models import ModelProfile
from ..models.arguments import Arguments
from ..redaction import register_secret
from ..settings import Settings
from .base import CreateRequest, Download, LostCreateSearch, ModelInfo, ModelListUnavailable, VideoJob
from .connection import Connection

_CHUNK = 1 << 20
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_REQUESTS = "/requests/"
HISTORY_PAGE = 100
HISTORY_MAX_PAGES = 20
CLOCK_SKEW_SECONDS = 120  # fal's clock against ours, for the history's window
REFUSED_CONTENT = "safety_filtered"  # generation's word for a refusal of the content
_CONTENT_ERRORS = {"content_policy_violation"}
# fal-client's fixed storage hosts, and the queue host it read at import (FAL_QUEUE_RUN_HOST).
STORAGE_HOSTS = ("rest.fal.ai", "v3.fal.media")


class SubmitNotResent(Exception):
    """A queue POST failed or was refused: raised past fal-client's retry loop (which resends
    only ``httpx.HTTPError`` and ``FalClientHTTPError``), so the submit is sent once."""

    def __init__(self, cause: Exception | None = None, response: httpx.Response | None = None):
        super().__init__(str(cause) if cause else f"HTTP {response.status_code if response is not None else '?'}")
        self.cause = cause
        self.response = response


def queue_host() -> str:
    """The queue host fal-client read when it was imported (``FAL_QUEUE_RUN_HOST`` or queue.fal.run)."""
    return urlsplit(fal_sdk.QUEUE_URL_FORMAT).netloc


class FalTransport(httpx.BaseTransport):
    """The transport under the SDK's client: sends fal's hosts to ``base_url`` when one is set,
    lets a queue POST go out once, and sends the key to fal's hosts only (the storage upload's
    PUT goes to the URL fal hands out, a signed URL of another host, through the same client)."""

    def __init__(self, inner: httpx.BaseTransport, base_url: str | None = None, *, keyed_hosts: tuple[str, ...] = ()):
        self._inner = inner
        self._base = urlsplit(base_url) if base_url else None
        self._keyed = (*STORAGE_HOSTS, *keyed_hosts, *((self._base.hostname,) if self._base else ()))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        queue = urlsplit(f"//{queue_host()}").hostname
        is_submit = request.method == "POST" and request.url.netloc.decode("ascii") == queue_host()
        if self._base is not None and request.url.host in (*STORAGE_HOSTS, queue):
            request.url = request.url.copy_with(scheme=self._base.scheme, host=self._base.hostname, port=self._base.port)
            request.headers["Host"] = self._base.netloc
        if request.url.host not in (*self._keyed, queue):
            request.headers.pop("Authorization", None)
        if not is_submit:
            return self._inner.handle_request(request)
        try:
            response = self._inner.handle_request(request)
        except Exception as err:  # noqa: BLE001 - every failure of a submit ends here, never resent
            raise SubmitNotResent(cause=err) from err
        if response.status_code in (408, 409, 429) or response.status_code >= 500:
            response.read()
            response.close()
            raise SubmitNotResent(response=response)
        return response

    def close(self) -> None:
        self._inner.close()


@dataclass(frozen=True)
class _SdkClient(fal_client.SyncClient):
    """fal-client's SyncClient with the httpx client soraflow gives it: the SDK's own headers,
    timeout and redirects (as ``SyncClient._client`` builds them), over ``FalTransport``."""

    transport: httpx.BaseTransport | None = field(default=None, repr=False, compare=False)

    @cached_property
    def _client(self) -> httpx.Client:
        return httpx.Client(
            transport=self.transport,
            headers={"Authorization": self._auth.header_value, "User-Agent": fal_sdk.USER_AGENT},
            timeout=self.default_timeout,
            follow_redirects=True,
        )


def split_job_id(job_id: str) -> tuple[str, str]:
    """``(endpoint_id, request_id)`` of a job id ``{endpoint_id}/requests/{request_id}``."""
    endpoint_id, sep, request_id = job_id.rpartition(_REQUESTS)
    if not sep or not endpoint_id or not _UUID.match(request_id):
        raise PermanentProviderError(f"{job_id!r} is not a fal job id ({{endpoint_id}}/requests/{{request_id}})", code="bad_job_id")
    return endpoint_id, request_id


def _said(err: Exception) -> str:
    if isinstance(err, fal_client.FalClientHTTPError):
        return f"HTTP {err.status_code}: {_detail(err.message)}"
    if isinstance(err, httpx.HTTPStatusError):
        return f"HTTP {err.response.status_code}: {_detail(err.response.text)}"
    return f"{type(err).__name__}: {err}"


def _detail(message: Any) -> str:
    text = " ".join(str(message).split())
    return text if len(text) <= 300 else text[:299] + "…"


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    try:
        return max(0.0, float(headers.get("retry-after"))) if headers and headers.get("retry-after") else None
    except ValueError:
        return None


def classify(err: Exception, *, model: str | None = None, creating: bool = False) -> ProviderError:
    """What fal-client raised (or a submit that was not resent), in soraflow's typed errors."""
    if isinstance(err, ProviderError):
        return err
    if isinstance(err, SubmitNotResent):
        if err.response is not None:
            status, headers = err.response.status_code, err.response.headers
            text = _detail(err.response.text)
            if status == 429:  # refused before acceptance: nothing was queued
                return TransientProviderError(f"rate limited: {text}", code="rate_limited", status=429, retry_after=_retry_after(headers))
            return AmbiguousCreateError(f"HTTP {status} after the submit was sent: {text}", code="server_error", status=status)
        cause = err.cause
        if isinstance(cause, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
            return TransientProviderError(f"could not reach fal's queue: {cause}", code="connection")
        return AmbiguousCreateError(f"the submit's answer was lost: {type(cause).__name__}: {cause}", code="connection")
    if isinstance(err, fal_client.FalClientHTTPError):
        message = _detail(err.message)
        code = err.error_type or f"http_{err.status_code}"
        if err.status_code == 429:
            return TransientProviderError(message, code="rate_limited", status=429, retry_after=_retry_after(err.response_headers))
        if err.status_code >= 500 or err.status_code == 408:
            if creating:
                return AmbiguousCreateError(message, code=code, status=err.status_code)
            return TransientProviderError(message, code=code, status=err.status_code)
        if err.status_code in (401, 403):
            return PermanentProviderError(f"fal refused the key: {message}", code="credentials", status=err.status_code)
        if err.status_code == 404 and creating:
            return ModelUnavailableError(model or "?", message, code="model_not_found", status=404)
        if err.status_code == 404:
            return JobLostError(message, code=code, status=404)
        return PermanentProviderError(message, code=code, status=err.status_code)
    if isinstance(err, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return TransientProviderError(f"could not reach fal: {err}", code="connection")
    if isinstance(err, httpx.TransportError):
        return TransientProviderError(f"{type(err).__name__}: {err}", code="connection")
    if isinstance(err, (KeyError, ValueError)):  # the SDK could not read an answer (a field missing, a status it does not know)
        return UntrustedAnswerError(f"fal's answer could not be read: {type(err).__name__}: {err}", code="bad_answer")
    raise err


def _ssl_context(ca_file: str | None) -> ssl.SSLContext | bool:
    return ssl.create_default_context(cafile=ca_file) if ca_file else True


class FalQueueProvider:
    """fal's queue through ``fal_client.SyncClient`` (one per endpoint and key)."""

    dialect = "fal"
    variants: tuple[str, ...] = ("video",)  # fal's video endpoints return no thumbnail

    def __init__(self, connection: Connection, settings: Settings):
        self.where = connection.where
        self._key = connection.api_key or None
        if self._key:
            register_secret(self._key, f"fal key of endpoint {connection.route.name}")
        self._profiles: dict[str, ModelProfile] = {p.model: p for p in connection.profiles if p.arguments is not None}
        verify = _ssl_context(connection.ca_file)
        self._base_url = connection.base_url
        # fal takes a webhook per request: the endpoint's receiver URL, sent with each create when
        # its clips wait on webhooks (docs/webhooks.md)
        self._webhook_url = connection.endpoint.webhooks.url if connection.route.waits_on_webhooks else None
        sdk_transport = FalTransport(fal_sdk.BackupDomainTransport(transport=httpx.HTTPTransport(verify=verify)), connection.base_url)
        # The SDK's client is built lazily; a missing key says so at the first request, not here.
        self._sdk = _SdkClient(key=self._key or "", default_timeout=settings.request_timeout_seconds, transport=sdk_transport)
        timeout = httpx.Timeout(settings.request_timeout_seconds, connect=min(10.0, settings.request_timeout_seconds))
        # fal-client has no platform API (history, prices, models) and no download: plain httpx,
        # with only the Key header fal documents, and none at all on the CDN (its URLs are public).
        platform = (connection.platform_url or "https://api.fal.ai/v1").rstrip("/") + "/"
        self._platform = httpx.Client(
            base_url=platform,
            headers={"Authorization": f"Key {self._key}"} if self._key else {},
            transport=FalTransport(httpx.HTTPTransport(verify=verify, retries=1), connection.base_url,
                                   keyed_hosts=(urlsplit(platform).hostname or "",)),
            timeout=timeout,
        )
        self._cdn = httpx.Client(transport=FalTransport(httpx.HTTPTransport(verify=verify, retries=1), connection.base_url),
                                 timeout=timeout, follow_redirects=True)
        self._settle_seconds = connection.endpoint.history_settle_seconds
        self._videos: dict[str, str] = {}  # job id -> its video's URL, once the result named it
        self._listed: tuple[float, list[ModelInfo]] | None = None

    # --- the table ---------------------------------------------------------------------------
    def _table(self, model: str) -> Arguments:
        profile = self._profiles.get(model)
        if profile is None:
            known = ", ".join(sorted(self._profiles)) or "none"
            raise PermanentProviderError(f"no fal profile at {self.where} calls endpoint {model!r} (its arguments table says how to "
                                         f"call it); profiles' endpoints here: {known}", code="no_profile")
        return profile.arguments

    # --- writes ------------------------------------------------------------------------------
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
        """Upload the first frame (fal's storage), then submit once; returns the queued job."""
        table = self._table(model)
        if reference_images:
            raise PermanentProviderError(f"fal endpoint {model} takes no reference images here", code="not_supported")
        if reference is not None and table.first_frame is None:
            raise PermanentProviderError(f"fal endpoint {model} takes no first frame (its arguments table maps none)", code="not_supported")
        if reference is not None and table.first_frame.max_bytes is not None and reference.stat().st_size > table.first_frame.max_bytes:
            # A first frame made from an earlier clip is known only now: refused before anything is paid.
            raise PermanentProviderError(f"the first frame {reference.name} is {reference.stat().st_size} bytes; fal endpoint {model} "
                                         f"takes images of at most {table.first_frame.max_bytes} bytes", code="image_too_large")
        image_url = self.upload(reference) if reference is not None else None
        arguments = table.arguments(prompt=prompt, seconds=seconds, size=size, audio=audio, seed=seed, image_url=image_url)
        return self._submit(model, arguments, size=size, seconds=seconds, prompt=prompt, webhook_url=self._webhook_url)

    def _submit(self, model: str, arguments: dict, *, size: str, seconds: int, prompt: str, webhook_url: str | None = None) -> VideoJob:
        """The one paid request: sent once (FalTransport), its answer checked before it is kept."""
        try:
            handle = self._sdk.submit(model, arguments, webhook_url=webhook_url)
        except Exception as err:  # noqa: BLE001 - classified, never swallowed
            raise classify(err, model=model, creating=True) from err
        request_id = str(getattr(handle, "request_id", "") or "")
        if not _UUID.match(request_id):
            raise AmbiguousCreateError(f"fal answered the submit without a usable request id: {request_id!r}", code="bad_answer")
        return VideoJob(id=f"{model}{_REQUESTS}{request_id}", status="queued", model=model, size=size, seconds=str(seconds), prompt=prompt,
                        created_at=int(time.time()))

    def upload(self, path: Path) -> str:
        """``path`` up to fal's storage (the SDK's upload_file); its URL. The table's ``max_bytes``
        is checked at validation, before anything is paid."""
        try:
            url = self._sdk.upload_file(path, repository="fal")
        except Exception as err:  # noqa: BLE001 - an upload buys nothing: a failure is said, and retried when it may pass
            said = classify(err)
            if isinstance(said, PermanentProviderError):
                raise said from err
            raise TransientProviderError(f"upload of {path.name} to fal's storage failed: {said}", code="upload") from err
        if not isinstance(url, str) or urlsplit(url).scheme != "https":
            raise UntrustedAnswerError(f"fal's storage answered the upload of {path.name} with {url!r}, not an https URL", code="bad_answer")
        return url

    def extend(self, *, source_job_id: str, model: str, size: str, seconds: int, prompt: str, audio: bool = True) -> VideoJob:
        raise PermanentProviderError(f"fal endpoints extend no videos here (endpoint {self.where})", code="not_supported")

    def remix(self, *, source_job_id: str, model: str, prompt: str) -> VideoJob:
        raise PermanentProviderError(f"fal endpoints make no remixes here (endpoint {self.where})", code="not_supported")

    def cancel(self, job_id: str) -> None:
        endpoint_id, request_id = split_job_id(job_id)
        try:
            self._sdk.cancel(endpoint_id, request_id)
        except Exception as err:  # noqa: BLE001
            raise classify(err) from err

    # --- reads -------------------------------------------------------------------------------
    def retrieve(self, job_id: str) -> tuple[VideoJob, float | None]:
        """``status()`` first; ``result()`` once, when fal says COMPLETED (it polls until done)."""
        endpoint_id, request_id = split_job_id(job_id)
        try:
            status = self._sdk.status(endpoint_id, request_id, with_logs=False)
        except Exception as err:  # noqa: BLE001
            raise classify(err, model=endpoint_id) from err
        if isinstance(status, fal_client.Queued):
            return VideoJob(id=job_id, status="queued", model=endpoint_id), None
        if isinstance(status, fal_client.InProgress):
            return VideoJob(id=job_id, status="in_progress", model=endpoint_id), None
        if not isinstance(status, fal_client.Completed):
            raise UntrustedAnswerError(f"fal reports request {request_id} as {status!r}", code="unknown_status")
        if status.error:
            return self._failed(job_id, endpoint_id, status.error_type, status.error), None
        if job_id not in self._videos:
            try:
                result = self._sdk.result(endpoint_id, request_id)
            except fal_client.FalClientHTTPError as err:
                if err.status_code in (400, 422):  # the model's refusal, as the result answers it
                    return self._failed(job_id, endpoint_id, err.error_type, err.message), None
                raise classify(err, model=endpoint_id) from err
            except Exception as err:  # noqa: BLE001
                raise classify(err, model=endpoint_id) from err
            self._videos[job_id] = self._video_url(endpoint_id, job_id, result)
        return VideoJob(id=job_id, status="completed", progress=100, model=endpoint_id), None

    def _failed(self, job_id: str, endpoint_id: str, error_type: str | None, message: Any) -> VideoJob:
        code = REFUSED_CONTENT if error_type in _CONTENT_ERRORS else (error_type or "failed")
        return VideoJob(id=job_id, status="failed", model=endpoint_id, error_code=code, error_message=_detail(message))

    def _video_url(self, endpoint_id: str, job_id: str, result: Any) -> str:
        """The video URL at the profile's result path, checked (rule 7)."""
        table = self._table(endpoint_id)
        url = table.video_url(result)
        if url is None or urlsplit(url).scheme != "https":
            raise UntrustedAnswerError(f"fal's result for {job_id} has no https video URL at {table.result_video!r}", code="bad_answer")
        return url

    def download(self, job_id: str, dest: Path, *, variant: Literal["video", "thumbnail", "spritesheet"] = "video") -> Download:
        """Stream the result's video to ``dest`` (via a temp file), checked by type and sha256."""
        if variant != "video":
            raise PermanentProviderError(f"fal returns no {variant}", code="no_variant")
        if job_id not in self._videos:
            job, _ = self.retrieve(job_id)
            if job.status != "completed":
                raise PermanentProviderError(f"request {job_id} has no video ({job.status}: {job.error_message or 'not done'})",
                                             code=job.error_code or "not_ready")
        url = self._videos[job_id]
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.part")
        digest, size = hashlib.sha256(), 0
        try:
            with self._cdn.stream("GET", url) as response:
                if response.status_code == 404:
                    raise JobLostError(f"the video of {job_id} is gone from fal's CDN (404)", code="not_found", status=404)
                response.raise_for_status()
                kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if kind not in ("video/mp4", "application/octet-stream", "binary/octet-stream"):
                    raise UntrustedAnswerError(f"the video of {job_id} came as {kind or 'no type'}, not video/mp4", code="bad_media_type")
                with open(tmp, "wb") as out:
                    for chunk in response.iter_bytes(_CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
            os.replace(tmp, dest)
        except ProviderError:
            tmp.unlink(missing_ok=True)
            raise
        except Exception as err:  # noqa: BLE001
            tmp.unlink(missing_ok=True)
            raise TransientProviderError(f"download of {job_id} failed: {_said(err)}", code="download") from err
        return Download(path=dest, size=size, sha256=digest.hexdigest())

    # --- a lost answer ------------------------------------------------------------------------
    def find_lost_create(
        self, request: CreateRequest, *, since: float, exclude: set[str], witnesses: Mapping[str, str]
    ) -> LostCreateSearch:
        """fal's request history for the create sent at ``since`` (docs/fal.md, "Recovery").

        Found: a request of this endpoint, since the create, whose inputs are this clip's
        (prompt, length and size as the table writes them), not held by another clip. Absent,
        proven: the history answered to its end, shows every request this ledger recorded here
        since then that fal says has finished, and ``history_settle_seconds`` have passed (a
        request accepted then would have finished and been listed). Before that: search again
        later (TransientProviderError). Unknown (in doubt): the history is unreachable, refused,
        or lists no inputs.
        """
        where = f"fal's request history ({self.where})"
        table = self._table(request.model)
        sent = table.arguments(prompt=request.prompt, seconds=request.seconds, size=request.size, audio=True)
        keys = [a.name for f, a in table.mapped().items() if f in ("prompt", "seconds", "aspect_ratio", "resolution") and a.name in sent]
        start = datetime.datetime.fromtimestamp(since - CLOCK_SKEW_SECONDS, datetime.timezone.utc)
        params: dict[str, Any] = {"endpoint_id": request.model, "start": start.isoformat(), "expand": "payloads", "limit": HISTORY_PAGE}
        listed: dict[str, dict] = {}
        for _ in range(HISTORY_MAX_PAGES):
            try:
                response = self._platform.get("models/requests/by-endpoint", params=params)
            except (httpx.ConnectError, httpx.ConnectTimeout) as err:
                return LostCreateSearch(outcome="unknown", tried=f"{where} is unreachable ({type(err).__name__}: {err})")
            except httpx.TransportError as err:
                raise TransientProviderError(f"{where} did not answer ({type(err).__name__}); searching again later", code="history") from err
            if response.status_code in (401, 403, 404):
                return LostCreateSearch(outcome="unknown", tried=f"{where} refused the search: HTTP {response.status_code}: {_detail(response.text)}")
            if response.status_code == 429 or response.status_code >= 500:
                raise TransientProviderError(f"{where} answered HTTP {response.status_code}; searching again later", code="history",
                                             status=response.status_code, retry_after=_retry_after(response.headers))
            try:
                page = response.json()
                items = page["items"]
                assert isinstance(items, list)
            except (ValueError, KeyError, TypeError, AssertionError):
                return LostCreateSearch(outcome="unknown", tried=f"{where} answered HTTP {response.status_code} without a list of requests")
            for item in items:
                if not isinstance(item, dict) or not isinstance(item.get("request_id"), str):
                    return LostCreateSearch(outcome="unknown", tried=f"{where} lists a request without its request_id")
                if not isinstance(item.get("json_input"), dict):
                    return LostCreateSearch(outcome="unknown", tried=f"{where} lists request {item['request_id']} without its inputs "
                                            "(payload storage off?), so no request can be told from another")
                listed[item["request_id"]] = item
            if not page.get("has_more") or not page.get("next_cursor"):
                break
            params["cursor"] = page["next_cursor"]
        else:
            return LostCreateSearch(outcome="unknown", tried=f"{where}: more than {HISTORY_MAX_PAGES * HISTORY_PAGE} requests since the create")
        window = f"{len(listed)} finished request(s) of {request.model} since {start.strftime('%H:%M:%S UTC')}"
        matches = [
            item for rid, item in listed.items()
            if f"{request.model}{_REQUESTS}{rid}" not in exclude and all(item["json_input"].get(k) == sent[k] for k in keys)
        ]
        if matches:
            item = min(matches, key=lambda i: (str(i.get("sent_at") or ""), i["request_id"]))
            job_id = f"{request.model}{_REQUESTS}{item['request_id']}"
            if not _UUID.match(item["request_id"]):
                return LostCreateSearch(outcome="unknown", tried=f"{where} lists request {item['request_id']!r}, which is no request id")
            failed = isinstance(item.get("status_code"), int) and item["status_code"] >= 400
            job = VideoJob(id=job_id, status="failed" if failed else "completed", model=request.model, size=request.size,
                           seconds=str(request.seconds), prompt=request.prompt, progress=0 if failed else 100,
                           error_code="failed" if failed else None, error_message=_detail(item.get("json_output")) if failed else None)
            return LostCreateSearch(outcome="found", job=job, tried=f"{where}: {window}; request {item['request_id']} has this clip's inputs")
        # Nothing matches. Absence needs a history that is current and a create old enough.
        for job_id in witnesses:
            endpoint_id, _, rid = job_id.rpartition(_REQUESTS)
            if endpoint_id != request.model or rid in listed:
                continue
            try:
                seen, _ = self.retrieve(job_id)
            except ProviderError as err:
                raise TransientProviderError(f"{where}: request {rid}, recorded here since the create, could not be checked "
                                             f"({err.provider_message}); searching again later", code="history_witness") from err
            if seen.status in ("completed", "failed"):
                raise TransientProviderError(f"{where} does not list request {rid} yet, which has finished: the history lags; "
                                             "searching again later", code="history_lag")
        waited = time.time() - since
        if waited < self._settle_seconds:
            raise TransientProviderError(
                f"{where}: {window}, none with this clip's inputs; a request sent {waited:.0f} s ago may still be queued or "
                f"rendering (the history lists finished requests only): searching again later, absence is proven after "
                f"{self._settle_seconds:.0f} s (history_settle_seconds)", code="history_pending")
        return LostCreateSearch(outcome="absent", tried=f"{where}: {window} and {waited:.0f} s after the create, none with this clip's inputs")

    # --- the watch -----------------------------------------------------------------------------
    def list_models(self) -> list[ModelInfo]:
        """fal's model metadata for the profiles' endpoints (``GET /v1/models``)."""
        ids = sorted(self._profiles)
        if not ids:
            return []
        try:
            models = self._platform_get("models", {"endpoint_id": ",".join(ids)}).get("models")
        except PermanentProviderError as err:
            if err.status in (401, 403, 404):  # some accounts' keys may not read it: the profiles' dates decide
                raise ModelListUnavailable(f"fal's model metadata at {self.where} is not readable with this key "
                                           f"({err.provider_message})", code="no_model_list", status=err.status) from err
            raise
        if not isinstance(models, list):
            raise UntrustedAnswerError(f"fal's model metadata ({self.where}) answered without a list of models", code="bad_answer")
        out = []
        for m in models:
            if isinstance(m, dict) and isinstance(m.get("endpoint_id"), str):
                status = (m.get("metadata") or {}).get("status")
                # A deprecated model is still served, and is going: said as retiring today.
                out.append(ModelInfo(id=m["endpoint_id"], owned_by="fal",
                                     shutdown_date=datetime.date.today().isoformat() if status == "deprecated" else None))
        return out

    def model_info(self, model: str) -> ModelInfo | None:
        """What fal's model metadata says of ``model``: one request lists every profile's model,
        and the answer serves the questions that follow within two seconds (the watch and the
        preflight ask model by model, in a loop)."""
        now = time.monotonic()
        if self._listed is None or now - self._listed[0] > 2:
            self._listed = (now, self.list_models())
        return next((m for m in self._listed[1] if m.id == model), None)

    def prices(self, endpoint_ids: list[str]) -> dict[str, tuple[float, str]]:
        """fal's pricing API: endpoint id -> (unit price in USD, unit) for those it prices."""
        out: dict[str, tuple[float, str]] = {}
        for i in range(0, len(endpoint_ids), 50):
            body = self._platform_get("models/pricing", {"endpoint_id": ",".join(endpoint_ids[i : i + 50])})
            for p in body.get("prices") or []:
                if isinstance(p, dict) and isinstance(p.get("unit_price"), (int, float)) and p.get("currency", "USD") == "USD":
                    out[str(p.get("endpoint_id"))] = (float(p["unit_price"]), str(p.get("unit") or ""))
        return out

    def _platform_get(self, path: str, params: dict) -> dict:
        try:
            response = self._platform.get(path, params=params)
            response.raise_for_status()
            body = response.json()
        except httpx.HTTPStatusError as err:
            status = err.response.status_code
            cls = TransientProviderError if status == 429 or status >= 500 else PermanentProviderError
            raise cls(f"fal's platform API ({self.where}) answered {_said(err)}", code="platform", status=status) from err
        except (httpx.HTTPError, ValueError) as err:
            raise TransientProviderError(f"fal's platform API ({self.where}): {_said(err)}", code="platform") from err
        if not isinstance(body, dict):
            raise UntrustedAnswerError(f"fal's platform API ({self.where}) answered {path} with no object", code="bad_answer")
        return body
