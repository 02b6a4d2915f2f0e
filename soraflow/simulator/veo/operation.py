"""A Veo job as the long-running operation ``fetchPredictOperation`` returns.

- running: ``{"name"}`` only (Vertex AI reports no progress for Veo and omits ``done``);
- finished: ``{"name", "done": true, "response": {"@type", "raiMediaFilteredCount", "videos": [...]}}``
  with each video inline (``{"bytesBase64Encoded", "mimeType"}``) or, when the request named a
  ``storageUri``, as ``{"gcsUri", "mimeType"}`` of an object the simulator's GCS routes serve;
- safety-filtered: ``done`` with no videos, ``raiMediaFilteredCount`` and the reasons (nothing
  is billed for a filtered video);
- failed: ``done`` with ``error`` ``{"code": 13, "message"}`` (google.rpc.Status).
"""

from __future__ import annotations

import base64

from ..jobs import Job
from .envelope import RPC_CODES
from .request import VeoRequest

RESPONSE_TYPE = "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"
SAFETY_REASON = (
    "Unable to show generated videos. All videos were filtered out because they violated Vertex AI's usage "
    "guidelines. You will not be charged for blocked videos. Try rephrasing the prompt. Support codes: 29310472"
)
MIME = "video/mp4"


def object_names(job: Job) -> list[str]:
    """``bucket/path`` of each sample a job with a ``storageUri`` writes."""
    request: VeoRequest = job.request
    prefix = request.storage_uri.removeprefix("gs://").rstrip("/")
    op_id = job.id.rsplit("/", 1)[-1]
    return [f"{prefix}/{op_id}/sample_{i}.mp4" for i in range(request.samples)]


def operation_resource(job: Job, now: float) -> dict:
    status, _, _, error = job.state(now)
    resource: dict = {"name": job.id}
    if status in ("queued", "in_progress"):
        return resource
    resource["done"] = True
    request: VeoRequest = job.request
    if status == "failed" and job.moderated:
        resource["response"] = {"@type": RESPONSE_TYPE, "raiMediaFilteredCount": request.samples,
                                "raiMediaFilteredReasons": [SAFETY_REASON]}
        return resource
    if status == "failed":
        resource["error"] = {"code": RPC_CODES["INTERNAL"], "message": (error or {}).get("message", "Internal error encountered.")}
        return resource
    media = job.media(now).path("video")
    if request.storage_uri:
        videos = [{"gcsUri": f"gs://{name}", "mimeType": MIME} for name in object_names(job)]
    else:
        encoded = base64.b64encode(media.read_bytes()).decode("ascii")
        videos = [{"bytesBase64Encoded": encoded, "mimeType": MIME} for _ in range(request.samples)]
    resource["response"] = {"@type": RESPONSE_TYPE, "raiMediaFilteredCount": 0, "videos": videos}
    return resource
