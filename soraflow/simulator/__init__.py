"""The simulator: soraflow's default backend without a key, and the test bed for every failure.

It speaks every dialect soraflow speaks, from one process and one job store, one subpackage
per dialect: the Videos and Models API of the reference description (openai/, with
openai/reference/; server base ``/v1``), and Veo on Vertex AI as google-genai calls it (veo/,
``/v1beta1``; base URL ``sim.url``). What they share stays at this level: the jobs and their
lifecycle (jobs.py), rendering (render.py), faults (faults.py, gate.py), the job list and state
(state.py, app.py's admin routes), retirement dates (retirement.py), stored uploads
(uploads.py), image headers (images.py) and the refusal every dialect words its own way
(errors.py). The unchanged SDKs work against it::

    from soraflow.simulator import Simulator, SimulatorConfig

    with Simulator(SimulatorConfig(latency=1.0, faults="429=0.1", seed=3)) as sim:
        client = openai.OpenAI(base_url=sim.base_url, api_key=sim.api_key)
        video = client.videos.create_and_poll(prompt="Shot dawn", seconds="4", size="1280x720")
        veo = genai.Client(vertexai=True, api_key=sim.api_key, http_options={"base_url": sim.url})

Behaviour, where the service had to be imitated:
- Jobs: queued for the first 10 % of ``latency``, then in_progress (progress rises with time,
  capped at 99 until the render is on disk), then completed; all jobs age at once, so N jobs
  of latency L finish at about L. ``expires_at`` = completed_at + ``ttl_seconds``; after it
  the content answers 404 (code ``video_expired``).
- ``openai-poll-after-ms`` on retrieve of an unfinished job: remaining time + 50 ms, clamped to
  [250 ms, 5 s]: the next poll lands just after completion, long jobs still report progress.
- Content of an unfinished job: 404 "Video is not ready yet" (as the live service answered).
- Validation: model, seconds and size per ``SimulatorConfig.models`` (default: every built-in
  model profile, soraflow.models, including the values the live service accepted beyond the
  published spec: 16 and 20 s, 1080p on sora-2-pro); the embedded simulator serves the
  user's profiles too (embedded.py); prompt 1..32000 characters (less where a model says
  so); ``input_reference`` must be a PNG/JPEG/WebP of exactly the requested size.
- Edits and extensions (openai/edits.py) start from a completed video named ``{"id": ...}`` (404 when
  unknown, 400 when not completed) or from an uploaded video (taken as a sora-2 clip). They
  are jobs like any create; an extension's content is its source followed by the new seconds,
  and its ``seconds`` is the stitched total, as the reference defines it.
- Characters (openai/characters.py): a 1..80 character name and an uploaded video, which must be a
  video ffprobe can read (still images refused), stored under its sha256.
- Faults (``faults="429=0.1,500=0.05,502=0.01,503=0.01,reset=0.05,stall=0.02,truncate=0.05,
  moderation=0.1"``): see gate.py (wire faults) and faults.py (seeded, in arrival order).
- ``shutdown=True``: creates, remixes, edits and extensions answer 404 ``model_not_found``
  naming the model and OPENAI_SORA_SHUTDOWN_DATE (retirement.py, openai/models.py); /v1/models shows the past
  ``shutdown_date`` (``shutdown_listing="omit"`` leaves the models out). ``model_shutdown_dates`` sets one
  model's date: a future date marks it retiring, a past one retires it.
- Admin routes (never faulted or counted): ``GET /_sim/stats``, ``GET /_sim/jobs``,
  ``POST /_sim/reset``, ``POST /_sim/faults`` with ``{"faults": SPEC, "seed": N}``.
"""

from .config import SimulatedModel, SimulatorConfig, simulated_models
from .embedded import embedded_simulator
from .faults import FaultSpecError
from .server import Simulator, serve

__all__ = ["Simulator", "SimulatorConfig", "SimulatedModel", "FaultSpecError", "embedded_simulator", "serve", "simulated_models"]
