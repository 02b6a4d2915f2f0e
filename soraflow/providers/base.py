"""The one provider interface the pipeline talks to.

Each API dialect has one implementation on its official SDK (openai-videos: openai_videos.py),
built from an endpoint's connection; every endpoint of a dialect (a vendor, Azure, a gateway,
the simulator) goes through the same class, only the connection differs (docs/architecture.md, rule 1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Mapping, Protocol

from pydantic import BaseModel, ConfigDict

from ..errors import PermanentProviderError


class ModelListUnavailable(PermanentProviderError):
    """The endpoint does not serve ``GET /models`` (many gateways, Azure for deployments)."""


JobStatus = Literal["queued", "in_progress", "completed", "failed"]
TERMINAL: frozenset[str] = frozenset({"completed", "failed"})


class VideoJob(BaseModel):
    """What soraflow keeps of a provider's video job."""

    model_config = ConfigDict(frozen=True)

    id: str
    status: str
    progress: int = 0
    model: str | None = None
    size: str | None = None
    seconds: str | None = None
    prompt: str | None = None
    created_at: int | None = None
    completed_at: int | None = None
    expires_at: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    remixed_from: str | None = None  # the source job of a remix, as the provider says

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


class ModelInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    shutdown_date: str | None = None
    owned_by: str | None = None


class Download(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: Path
    size: int
    sha256: str


class CreateRequest(BaseModel):
    """What one create asks for: the fields a provider can recognise its job by."""

    model_config = ConfigDict(frozen=True)

    model: str
    size: str
    seconds: int
    prompt: str


class LostCreateSearch(BaseModel):
    """What a provider can say about a create whose answer was lost (architecture rule 4).

    ``found``: this job is the one the create made. ``absent``: the provider proves no job was
    made (a list that works, shows the identifying field and covers the window; or an
    idempotency key). ``unknown``: nothing proves either, so the clip is in doubt. ``tried``
    says, for the user, what was looked at and what it showed.
    """

    model_config = ConfigDict(frozen=True)

    outcome: Literal["found", "absent", "unknown"]
    tried: str
    job: VideoJob | None = None


class VideoProvider(Protocol):
    dialect: str
    where: str  # the endpoint named for people: never a key, never URL userinfo
    # The content variants ``download`` serves ("video" always).
    variants: tuple[str, ...]

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
        """Start one job from ``reference`` (its first frame) and ``reference_images`` (what its
        subjects look like); ``audio`` asks for sound where the model makes it on request only.
        ``seed``: where the dialect takes one (a take after the first, a retake); a dialect with
        no seed does not send it."""

    def extend(self, *, source_job_id: str, model: str, size: str, seconds: int, prompt: str, audio: bool = True) -> VideoJob:
        """Start a job that plays the completed job ``source_job_id`` and then ``seconds`` more
        (where the profile says ``extension``); ``audio`` as for ``create``."""

    def remix(self, *, source_job_id: str, model: str, prompt: str) -> VideoJob:
        """Start a new take of the completed job ``source_job_id`` (where the profile says ``remix``)."""

    def retrieve(self, job_id: str) -> tuple[VideoJob, float | None]:
        """The job and the provider's poll-after hint in seconds, if it gave one."""

    def find_lost_create(
        self, request: CreateRequest, *, since: float, exclude: set[str], witnesses: Mapping[str, str]
    ) -> LostCreateSearch:
        """Look for the job a create sent at ``since`` may have made, and say how sure that is.

        ``exclude``: job ids the ledger already holds (never a match). ``witnesses``: job ids
        the ledger recorded at this endpoint since ``since``, with the sha256 of their prompts:
        a search that cannot see them, or sees other prompts, proves nothing. A dialect with no
        way to search answers ``unknown`` and says so.
        """

    def download(
        self, job_id: str, dest: Path, *, variant: Literal["video", "thumbnail", "spritesheet"] = "video"
    ) -> Download: ...

    def list_models(self) -> list[ModelInfo]:
        """What the endpoint lists; ModelListUnavailable where it lists nothing."""

    def model_info(self, model: str) -> ModelInfo | None:
        """What the endpoint says of one model (None: it does not offer it); ModelListUnavailable
        where it cannot say."""
