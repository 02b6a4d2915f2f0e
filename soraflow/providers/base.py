"""The one provider interface the pipeline talks to.

Each API dialect has one implementation on its official SDK (openai-videos: openai_videos.py),
built from an endpoint's connection; every endpoint of a dialect (a vendor, Azure, a gateway,
the simulator) goes through the same class, only the connection differs (docs/architecture.md, rule 1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Literal, Protocol

from pydantic import BaseModel, ConfigDict

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


class VideoProvider(Protocol):
    dialect: str
    # Whether list_jobs can find a job whose create answer was lost (rule 4): when it cannot,
    # a create that may have reached the provider leaves its clip in doubt.
    finds_lost_creates: bool
    # The content variants ``download`` serves ("video" always).
    variants: tuple[str, ...]

    def create(
        self, *, model: str, size: str, seconds: int, prompt: str, reference: Path | None = None
    ) -> VideoJob: ...

    def retrieve(self, job_id: str) -> tuple[VideoJob, float | None]:
        """The job and the provider's poll-after hint in seconds, if it gave one."""

    def list_jobs(self, *, created_after: int | None = None) -> Iterator[VideoJob]: ...

    def download(
        self, job_id: str, dest: Path, *, variant: Literal["video", "thumbnail", "spritesheet"] = "video"
    ) -> Download: ...

    def list_models(self) -> list[ModelInfo]:
        """What the endpoint lists; ModelListUnavailable where it lists nothing."""

    def model_info(self, model: str) -> ModelInfo | None:
        """What the endpoint says of one model (None: it does not offer it); ModelListUnavailable
        where it cannot say."""
