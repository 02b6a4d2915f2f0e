"""The fal provider on fal-client against the simulator's fal dialect: a create made from the
profile's arguments table with its first frame uploaded through fal's storage; a submit sent
once whatever happens to its answer; a lost answer adopted from the request history with no
extra request, a history that cannot answer leaving the clip in doubt, and a create that never
arrived proven absent only after the settle time; failures typed."""

from __future__ import annotations

import hashlib
import random
import socket
import time
from decimal import Decimal
from pathlib import Path

import pytest

from soraflow.errors import ClipInDoubtError, ModelUnavailableError, ModerationBlockedError, PermanentProviderError, TransientProviderError
from soraflow.generation import download_clip, poll_clip, submit_clip
from soraflow.ledger import Ledger, owner_id
from soraflow.models import load_catalog, route_endpoints
from soraflow.plan import ClipSpec
from soraflow.providers import FalQueueProvider, build_provider, connect
from soraflow.settings import Settings
from soraflow.simulator import Simulator, SimulatorConfig, simulated_models

from ..simulator.media import close_colours, colour_at, png, probe

KLING = "kling-3.0-pro-i2v"
KLING_ID = "fal-ai/kling-video/v3/pro/image-to-video"
VEO = "veo-3.1-fal"
VEO_ID = "fal-ai/veo3.1"
KEY = "fal-test-key-0123456789"
SUBMITS = "POST /{endpoint_id}"


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    with Simulator(SimulatorConfig(latency=0.4, cache_dir=str(tmp_path_factory.mktemp("renders")))) as sim:
        yield sim


@pytest.fixture(autouse=True)
def fresh(sim):
    sim.reset()
    sim.set_faults("", seed=None)
    sim.config.fal_history, sim.config.fal_history_lag_seconds = "serve", 0.0
    yield
    sim.set_faults("", seed=None)
    sim.config.fal_history, sim.config.fal_history_lag_seconds = "serve", 0.0


def catalog(sim: Simulator, settle: float = 3600):
    """The built-in fal profiles, with the fal endpoint pointed at the simulator as a user would
    point it at any host that serves fal's: base_url and the CA to trust."""
    return load_catalog(text=f"""
endpoints:
  fal: {{base_url: "{sim.fal_url}", ca_file: "{sim.fal_ca_file}", history_settle_seconds: {settle}}}
""")


def provider(sim: Simulator, settle: float = 3600) -> FalQueueProvider:
    cat = catalog(sim, settle)
    route = route_endpoints(cat, {"FAL_KEY": KEY}).route("fal")
    return build_provider(connect(route, {"FAL_KEY": KEY}, profiles=cat.profiles.values()), Settings(request_timeout_seconds=10))


def submits(sim: Simulator) -> int:
    return sim.stats()["requests_by_route"].get(SUBMITS, 0)


def fal_jobs(sim: Simulator):
    return [j for j in sim.state.jobs.all() if j.dialect == "fal"]


def clip(sim: Simulator, prompt: str, *, profile: str = VEO, model: str = VEO_ID, size: str = "1280x720", seconds: int = 4,
         settle: float = 3600) -> ClipSpec:
    route = route_endpoints(catalog(sim, settle), {"FAL_KEY": KEY}).route("fal")
    return ClipSpec(shot_id="s", shot_index=0, part=1, parts=1, profile=profile, model=model, route=route, size=size, seconds=seconds,
                    prompt=prompt, audio=False, price_usd=Decimal("0.80"), expected_render_seconds=4.0,
                    clip_key=hashlib.sha256(prompt.encode()).hexdigest()[:32])


def until_terminal(fal: FalQueueProvider, job_id: str):
    deadline = time.monotonic() + 30
    while True:
        job, _ = fal.retrieve(job_id)
        if job.terminal:
            return job
        assert time.monotonic() < deadline
        time.sleep(0.1)


def lose_the_next_submit_answer(sim: Simulator) -> None:
    """``reset`` for the next request only (a submit: accepted, then its connection reset), not
    for the history search that follows: a seed whose first draw falls in the fault's slice and
    whose third (after the job's own draw for moderation) does not."""
    def draws(seed: int) -> list[float]:
        rng = random.Random(seed)
        return [rng.random() for _ in range(3)]

    seed = next(s for s in range(10_000) if (d := draws(s))[0] < 0.5 <= d[2])
    sim.set_faults("reset=0.5", seed=seed)


def the_run_ended(ledger: Ledger) -> None:
    """What a rerun finds after the process that claimed the clips is gone."""
    from sqlalchemy import update

    from soraflow.ledger._tables import clips

    with ledger._write() as db:
        db.execute(update(clips).where(clips.c.state.in_(("claimed", "creating")))
                   .values(owner=f"{socket.gethostname()}:999999999:1", lease_until=0))


def test_a_first_frame_goes_up_through_fal_storage_and_the_table_names_every_argument(sim, tmp_path):
    image = tmp_path / "keeper.png"
    image.write_bytes(png(1920, 1080, (30, 160, 60)))
    fal = provider(sim)
    job = fal.create(model=KLING_ID, size="1920x1080", seconds=5, prompt="Shot keeper\nAt the window.", reference=image, audio=True)
    assert job.id.startswith(f"{KLING_ID}/requests/") and job.status == "queued"
    [made] = fal_jobs(sim)
    sent = made.request.arguments
    # Kling's own names and types: duration "5" (a string), start_image_url, generate_audio, the negative prompt constant.
    assert sent["duration"] == "5" and sent["generate_audio"] is True and sent["negative_prompt"]
    assert sent["start_image_url"].startswith(f"{sim.fal_url}/files/") and set(sent) == {
        "prompt", "duration", "start_image_url", "generate_audio", "negative_prompt"}
    routes = sim.stats()["requests_by_route"]
    assert routes["POST /storage/upload/initiate"] == 1 and routes["PUT /storage/upload/{id}"] == 1
    assert until_terminal(fal, job.id).status == "completed"
    got = fal.download(job.id, tmp_path / "clip.mp4")
    info = probe(got.path)
    assert [(v["width"], v["height"]) for v in info["video"]] == [(1920, 1080)] and abs(info["duration"] - 5) < 0.1
    assert "audio" in info and close_colours(colour_at(got.path, 0.1), (30, 160, 60))
    # Veo on fal writes the same clip its own way.
    veo = fal.create(model=VEO_ID, size="720x1280", seconds=8, prompt="Shot v", audio=False, seed=5)
    assert fal_jobs(sim)[-1].request.arguments == {"prompt": "Shot v", "duration": "8s", "aspect_ratio": "9:16", "resolution": "720p",
                                                   "generate_audio": False, "seed": 5}
    assert veo.id.startswith(f"{VEO_ID}/requests/")


def test_reset_after_accept_is_one_request_and_the_history_adopts_it_with_none_more(sim, tmp_path):
    ledger, settings = Ledger(tmp_path / "ledger.sqlite"), Settings(state_dir=tmp_path)
    c = clip(sim, "Shot lost\nThe answer is lost.")
    fal = provider(sim)
    lose_the_next_submit_answer(sim)  # the submit is accepted, then the connection is reset
    # The request is queued, not finished: the history (finished requests only) cannot show it yet.
    with pytest.raises(TransientProviderError, match="may still be queued or rendering"):
        submit_clip(c, provider=fal, ledger=ledger, settings=settings, work_dir=tmp_path)
    sim.set_faults("")
    assert submits(sim) == 1 and len(fal_jobs(sim)) == 1  # fal-client would have sent it up to 10 times
    assert ledger.get(c.clip_key).state == "creating"
    until_terminal(fal, f"{VEO_ID}/requests/{fal_jobs(sim)[0].id}")
    # The task's retry: the history now lists the request with this clip's inputs; it is adopted.
    adopted = submit_clip(c, provider=fal, ledger=ledger, settings=settings, work_dir=tmp_path)
    assert adopted.job_id == f"{VEO_ID}/requests/{fal_jobs(sim)[0].id}" and ledger.get(c.clip_key).job_id == adopted.job_id
    assert submits(sim) == 1 and len(fal_jobs(sim)) == 1
    poll_clip(c, adopted.job_id, provider=fal, ledger=ledger, settings=settings)
    sim.set_faults("truncate=1")  # the video's download is cut half-way: fetched again, never kept
    with pytest.raises(TransientProviderError, match="download of"):
        download_clip(c, adopted.job_id, provider=fal, ledger=ledger, work_dir=tmp_path)
    sim.set_faults("")
    got = download_clip(c, adopted.job_id, provider=fal, ledger=ledger, work_dir=tmp_path)
    assert abs(got.duration - 4) < 0.1 and submits(sim) == 1


@pytest.mark.parametrize("history", ["forbid", "unreachable"])
def test_a_history_that_cannot_answer_leaves_the_clip_in_doubt_and_nothing_is_resent(sim, tmp_path, history):
    ledger, settings = Ledger(tmp_path / "ledger.sqlite"), Settings(state_dir=tmp_path)
    c = clip(sim, f"Shot doubt {history}")
    fal = provider(sim)
    if history == "forbid":
        sim.config.fal_history = "forbid"  # a key without access to the history (403)
    else:
        fal._platform.base_url = "https://127.0.0.1:9/v1/"  # nothing listens there
    lose_the_next_submit_answer(sim)
    with pytest.raises(ClipInDoubtError) as err:
        submit_clip(c, provider=fal, ledger=ledger, settings=settings, work_dir=tmp_path)
    message = str(err.value)
    ref = c.clip_key[:16]
    assert f"soraflow jobs adopt {ref} JOB_ID" in message and f"soraflow jobs re-create {ref}" in message
    assert ("403" in message) if history == "forbid" else ("unreachable" in message)
    sim.set_faults("")
    the_run_ended(ledger)
    with pytest.raises(ClipInDoubtError):  # a rerun does not guess either
        submit_clip(c, provider=fal, ledger=ledger, settings=settings, work_dir=tmp_path)
    assert submits(sim) == 1 and ledger.get(c.clip_key).state == "in_doubt"
    # What the message says to do: the request found in fal's dashboard is adopted, checked at fal.
    from soraflow import recovery

    [request] = fal_jobs(sim)
    until_terminal(fal, f"{VEO_ID}/requests/{request.id}")
    settled = recovery.adopt(ledger, lambda entry: fal, ref, f"{VEO_ID}/requests/{request.id}")
    assert "adopted job" in settled.said
    assert submit_clip(c, provider=fal, ledger=ledger, settings=settings, work_dir=tmp_path).job_id.endswith(request.id)
    assert submits(sim) == 1


def test_a_create_that_never_arrived_is_proven_absent_only_after_the_settle_time(sim, tmp_path):
    ledger, settings = Ledger(tmp_path / "ledger.sqlite"), Settings(state_dir=tmp_path)
    c = clip(sim, "Shot never sent", settle=1.5)
    # A run marked the create as sent and died before the bytes left (kill -9 at that instant).
    owner = owner_id()
    ledger.claim_create(clip_key=c.clip_key, shot_id=c.shot_id, part=1, model=c.model, size=c.size, seconds=c.seconds,
                        prompt_sha256=c.prompt_sha256, owner=owner, endpoint=c.endpoint, profile=c.profile)
    assert ledger.renew_claim(c.clip_key, owner)
    the_run_ended(ledger)
    fal = provider(sim, settle=1.5)
    with pytest.raises(TransientProviderError, match="absence is proven after 2 s"):
        submit_clip(c, provider=fal, ledger=ledger, settings=settings, work_dir=tmp_path)
    assert submits(sim) == 0
    time.sleep(1.6)
    made = submit_clip(c, provider=fal, ledger=ledger, settings=settings, work_dir=tmp_path)
    assert made.created_here and submits(sim) == 1


def test_a_finished_request_the_history_does_not_show_yet_means_search_again(sim, tmp_path):
    """A witness (a request this ledger recorded here since the lost create) that fal says has
    finished but the history does not list: the history lags, and proves nothing yet."""
    ledger, settings = Ledger(tmp_path / "ledger.sqlite"), Settings(state_dir=tmp_path)
    fal = provider(sim, settle=0.1)
    lost = clip(sim, "Shot lagging", settle=0.1)
    owner = owner_id()
    ledger.claim_create(clip_key=lost.clip_key, shot_id="s", part=1, model=lost.model, size=lost.size, seconds=4,
                        prompt_sha256=lost.prompt_sha256, owner=owner, endpoint=lost.endpoint, profile=lost.profile)
    assert ledger.renew_claim(lost.clip_key, owner)
    the_run_ended(ledger)
    witness = clip(sim, "Shot witness", settle=0.1)
    made = submit_clip(witness, provider=fal, ledger=ledger, settings=settings, work_dir=tmp_path)
    until_terminal(fal, made.job_id)
    sim.config.fal_history_lag_seconds = 60
    with pytest.raises(TransientProviderError, match="the history lags"):
        submit_clip(lost, provider=fal, ledger=ledger, settings=settings, work_dir=tmp_path)
    sim.config.fal_history_lag_seconds = 0
    assert submit_clip(lost, provider=fal, ledger=ledger, settings=settings, work_dir=tmp_path).created_here
    assert submits(sim) == 2


def test_a_429_is_a_clean_refusal_sent_once_and_a_content_refusal_fails_the_clip(sim, tmp_path):
    fal = provider(sim)
    sim.set_faults("429=1")
    with pytest.raises(TransientProviderError) as err:
        fal.create(model=VEO_ID, size="1280x720", seconds=4, prompt="Shot quota", audio=False)
    assert err.value.status == 429 and err.value.retry_after is not None and submits(sim) == 1  # not ten
    sim.set_faults("moderation=1")
    job = fal.create(model=VEO_ID, size="1280x720", seconds=4, prompt="Shot refused", audio=False)
    done = until_terminal(fal, job.id)
    assert done.status == "failed" and done.error_code == "safety_filtered" and "content" in done.error_message
    sim.set_faults("")
    ledger, settings = Ledger(tmp_path / "ledger.sqlite"), Settings(state_dir=tmp_path)
    c = clip(sim, "Shot refused again")
    sim.set_faults("moderation=1")
    made = submit_clip(c, provider=fal, ledger=ledger, settings=settings, work_dir=tmp_path)
    with pytest.raises(ModerationBlockedError):
        poll_clip(c, made.job_id, provider=fal, ledger=ledger, settings=settings)
    with pytest.raises(PermanentProviderError, match="is not a fal job id"):
        fal.retrieve("video_123")


def test_simulated_models_carry_each_profile_s_table(sim):
    served = {m.id: m for m in simulated_models(catalog(sim)) if m.dialect == "fal"}
    assert served[VEO_ID].arguments.seconds.suffix == "s" and served[KLING_ID].arguments.first_frame.name == "start_image_url"


def test_the_transport_sends_a_submit_once_and_the_key_to_fal_s_hosts_only():
    """Under fal-client's retry loop (which resends httpx errors and 408/409/429/ingress 5xx): a
    queue POST that fails is raised as SubmitNotResent, which that loop does not catch; reads
    fail as httpx errors, which it retries. A signed upload URL of another host gets no key."""
    import httpx

    from soraflow.providers.fal_queue import FalTransport, SubmitNotResent, queue_host

    seen: list[tuple[str, str, str | None]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, str(request.url), request.headers.get("authorization")))
        if request.method == "POST" and "/reset" in request.url.path:
            raise httpx.ReadError("connection reset", request=request)
        return httpx.Response(429 if "/busy" in request.url.path else 200, json={})

    client = httpx.Client(transport=FalTransport(httpx.MockTransport(answer), keyed_hosts=("api.fal.ai",)),
                          headers={"Authorization": f"Key {KEY}"})
    queue = f"https://{queue_host()}"
    with pytest.raises(SubmitNotResent) as lost:
        client.post(f"{queue}/fal-ai/reset", json={})
    assert isinstance(lost.value.cause, httpx.ReadError)
    with pytest.raises(SubmitNotResent) as busy:
        client.post(f"{queue}/fal-ai/busy", json={})
    assert busy.value.response.status_code == 429
    assert client.get(f"{queue}/fal-ai/busy/requests/1/status").status_code == 429  # a read: the SDK's to retry
    client.put("https://storage.googleapis.com/fal-uploads/abc?X-Goog-Signature=1", content=b"png")
    client.get("https://api.fal.ai/v1/models/pricing")
    assert [(m, key) for m, _, key in seen] == [("POST", f"Key {KEY}"), ("POST", f"Key {KEY}"), ("GET", f"Key {KEY}"), ("PUT", None),
                                                ("GET", f"Key {KEY}")]


def test_a_retired_model_is_refused_as_unavailable_and_listed_as_gone(tmp_path):
    with Simulator(SimulatorConfig(latency=0.3, shutdown=True, cache_dir=str(tmp_path))) as gone:
        fal = provider(gone)
        with pytest.raises(ModelUnavailableError, match="retired"):
            fal.create(model=VEO_ID, size="1280x720", seconds=4, prompt="Shot gone", audio=False)
        from soraflow.watch.availability import model_status, offered_models

        assert model_status(VEO_ID, offered_models(fal, [VEO_ID]))[0] == "gone"
        assert gone.stats()["creates"] == 0
