"""One simulator's state: its jobs, faults, renders and counters, shared by the HTTP app and
the in-process ``Simulator`` object (both may touch it from different threads)."""

from __future__ import annotations

import asyncio
import threading

from .openai.characters import CharacterStore
from .config import SimulatorConfig
from .openai.contract import reference_openapi
from .fal import FalState
from .fal.storage import FileStore
from .faults import FaultInjector
from .jobs import OPENAI_VIDEOS, Dialect, Job, JobKind, JobStore
from .render import Renderer, RenderSpec
from .stats import Stats
from .veo.gcs import GcsObjects
from .webhooks import WebhookDeliveries


class SimulatorState:
    def __init__(self, config: SimulatorConfig):
        self.config = config
        self.jobs = JobStore()
        self.faults = FaultInjector(config.faults, config.seed)
        self.renderer = Renderer(config.cache_dir, config.render_workers)
        self.characters = CharacterStore()
        self.gcs = GcsObjects()  # what Veo jobs with a storageUri write
        # Uploaded videos are kept by content next to the renders they feed (extensions play them).
        self.uploads_dir = self.renderer.cache_dir / "uploads"
        self.fal = FalState(files=FileStore(self.renderer.cache_dir / "fal-files"))  # the fal dialect's storage
        self.stats = Stats()
        self.webhooks = WebhookDeliveries(self)  # each job's end, delivered where its dialect sends it
        self.validate_requests = config.validate_requests
        if self.validate_requests:
            reference_openapi()  # load now (~0.5 s), not inside the first request
        self._stopping: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # How many videos each request (by what shows in its render) has made since the last
        # reset: a request without a seed asked again makes another video, as a model does.
        self._generations: dict[str, int] = {}
        self._generations_lock = threading.Lock()

    # --- jobs ---------------------------------------------------------------------------
    def create_job(
        self, *, kind: JobKind, model: str, size: str, seconds: int, prompt: str, render: RenderSpec, source: str | None = None,
        dialect: Dialect = OPENAI_VIDEOS, id: str | None = None, request: object = None,
    ) -> Job:
        """Accept a job: decide moderation (a safety filter, for Veo), store it, start its render.

        ``seconds`` is what the resource reports (an extension's stitched total); ``render``
        is what the clip shows; ``request`` is what the dialect keeps of the request."""
        with self._generations_lock:
            generation = self._generations[render.key] = self._generations.get(render.key, 0) + 1
        render = render.as_take(generation)
        moderated = self.faults.for_job()  # drawn for every create, so seeded runs stay aligned
        lowered = prompt.lower()
        moderated = moderated or any(term.lower() in lowered for term in self.config.moderation_terms)
        job = self.jobs.new_job(
            model=model,
            size=size,
            seconds=seconds,
            prompt=prompt,
            latency=self.config.latency,
            ttl=self.config.ttl_seconds,
            kind=kind,
            source=source,
            moderated=moderated,
            dialect=dialect,
            id=id,
            request=request,
        )
        job.look = render.colour_key
        if moderated:
            self.stats.fault("moderation")
        else:  # a blocked job never renders, as the service bills and renders nothing for it
            self.jobs.attach_render(job, self.renderer.submit(render))
        self.stats.created(kind)
        # its end is delivered where the dialect sends it: a per-request webhook it kept (fal's
        # ``fal_webhook``), else the project's
        self.webhooks.job_created(job, deliver_to=getattr(request, "webhook_url", None))
        return job

    # --- run time -----------------------------------------------------------------------
    def bind_loop(self) -> None:
        """Called on the server's event loop at startup."""
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self.webhooks.bind(self._loop)

    async def sleep_unless_stopping(self, seconds: float) -> None:
        if self._stopping is None:
            await asyncio.sleep(seconds)
            return
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            pass

    def signal_stopping(self) -> None:
        """Thread-safe: wake held (stalled) answers so the server can stop promptly."""
        if self._loop is not None and self._stopping is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stopping.set)

    def set_faults(self, spec: str, seed: int | None = None) -> None:
        self.faults.configure(spec, seed)

    def reset(self) -> None:
        """Forget jobs, characters and counters; re-seed faults so a seeded sequence repeats from here."""
        self.jobs.clear()
        with self._generations_lock:
            self._generations.clear()
        self.characters.clear()
        self.gcs.clear()
        self.stats.clear()
        self.faults.reseed()
        self.webhooks.clear()

    def snapshot(self) -> dict:
        return {
            **self.stats.snapshot(),
            **self.jobs.counts(),
            "faults": str(self.faults.plan),
            "seed": self.faults.seed,
            "latency": self.config.latency,
            "validate_requests": self.validate_requests,
            "renders": self.renderer.stats(),
            "webhooks": self.webhooks.describe(),
        }

    def close(self) -> None:
        self.renderer.close()
