"""The Veo provider on google-genai against the simulator: create → poll → download (inline and
from Cloud Storage), each failure typed, and rule 4 where Veo cannot find a lost create."""

from __future__ import annotations

import socket
import time
from decimal import Decimal
from pathlib import Path

import pytest

from soraflow.errors import (
    AmbiguousCreateError,
    ClipInDoubtError,
    ModelUnavailableError,
    PermanentProviderError,
    TransientProviderError,
)
from soraflow.generation import poll_clip, submit_clip
from soraflow.ledger import Ledger
from soraflow.models import builtin_catalog, route_endpoints
from soraflow.plan import ClipSpec
from soraflow.providers import GoogleVeoProvider
from soraflow.settings import Settings
from soraflow.simulator import Simulator, SimulatorConfig

from ..simulator.media import colour_at, png, probe

MODEL = "veo-3.1-fast-generate-001"


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    with Simulator(SimulatorConfig(latency=0.3, cache_dir=str(tmp_path_factory.mktemp("renders")), stall_seconds=2)) as sim:
        yield sim


@pytest.fixture(autouse=True)
def fresh(sim):
    sim.reset()
    sim.set_faults("", seed=None)
    yield


def provider(sim, **options) -> GoogleVeoProvider:
    options.setdefault("read_attempts", 1)
    options.setdefault("retry_initial_delay", 0.05)
    return GoogleVeoProvider(api_key="AIza-simulated", base_url=sim.url, **options)


def until_completed(veo: GoogleVeoProvider, job_id: str):
    deadline = time.monotonic() + 30
    while True:
        job, hint = veo.retrieve(job_id)
        assert hint is None
        if job.terminal:
            return job
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_create_poll_download_inline_with_the_first_frame_and_no_sound(sim, tmp_path):
    veo = provider(sim)
    image = tmp_path / "first.png"
    image.write_bytes(png(32, 18, (230, 20, 20)))
    job = veo.create(model=MODEL, size="1280x720", seconds=4, prompt="Shot dawn\nA lighthouse", reference=image, audio=False,
                     negative_prompt="rain", seed=42, person_generation="dont_allow")
    assert job.id.startswith("projects/") and f"/models/{MODEL}/operations/" in job.id and job.status == "in_progress"
    assert until_completed(veo, job.id).status == "completed"
    got = veo.download(job.id, tmp_path / "clip.mp4")
    info = probe(got.path)
    assert (info["video"][0]["width"], info["video"][0]["height"]) == (1280, 720) and abs(info["duration"] - 4) < 0.1
    assert "audio" not in info and got.size == got.path.stat().st_size
    assert colour_at(got.path, 0)[0] > 180  # the first frame is the image
    with pytest.raises(PermanentProviderError):
        veo.download(job.id, tmp_path / "thumb.webp", variant="thumbnail")
    assert veo.variants == ("video",)


def test_a_take_s_seed_is_sent_and_makes_its_own_video_the_same_seed_the_same_one(sim, tmp_path):
    """Takes of a Veo shot differ by seed (GenerateVideosConfig.seed): the simulator draws each
    seed's band, and the same seed with the same request makes the same video, as Veo promises."""
    from ..simulator.media import band_colour, close_colours, corner_colour

    veo = provider(sim)
    looks = []
    for seed in (None, 2, 3, 2):
        job = veo.create(model=MODEL, size="1280x720", seconds=4, prompt="Shot quay\nA red boat", seed=seed)
        until_completed(veo, job.id)
        path = veo.download(job.id, tmp_path / f"take-{len(looks)}.mp4").path
        looks.append((band_colour(path, 1), corner_colour(path, 1)))
    assert [job.request.seed for job in sim.state.jobs.all()] == [None, 2, 3, 2]  # what the simulator received
    same = lambda a, b: close_colours(a[0], b[0]) and close_colours(a[1], b[1])  # noqa: E731
    assert not same(looks[0], looks[1]) and not same(looks[1], looks[2]) and not same(looks[0], looks[2])
    assert same(looks[1], looks[3])


def test_audio_when_asked_and_a_video_streamed_from_cloud_storage(sim, tmp_path):
    veo = provider(sim, output_gcs_uri="gs://renders/veo", storage_endpoint=sim.url)
    job = veo.create(model=MODEL, size="720x1280", seconds=6, prompt="Shot gcs", audio=True)
    until_completed(veo, job.id)
    got = veo.download(job.id, tmp_path / "clip.mp4")
    info = probe(got.path)
    assert (info["video"][0]["height"], len(info["audio"])) == (1280, 1)
    assert sim.stats()["requests_by_route"]["GET /download/storage/v1/b/{bucket}/o/{object}"] == 1


def test_a_size_veo_cannot_make_is_refused_before_anything_is_sent(sim):
    with pytest.raises(PermanentProviderError, match="1024x1792.*1280x720"):
        provider(sim).create(model=MODEL, size="1024x1792", seconds=4, prompt="x")
    assert sim.jobs() == []


def test_quota_refusal_is_transient_with_the_retry_delay(sim):
    sim.set_faults("429=1")
    with pytest.raises(TransientProviderError) as err:
        provider(sim).create(model=MODEL, size="1280x720", seconds=4, prompt="x")
    assert not isinstance(err.value, AmbiguousCreateError)
    assert err.value.status == 429 and err.value.retry_after == 1.0 and err.value.code == "resource_exhausted"


@pytest.mark.parametrize("fault", ["500", "502", "503", "reset", "stall"])
def test_a_create_whose_answer_may_be_lost_is_ambiguous_never_retried_by_the_sdk(sim, fault):
    sim.set_faults(f"{fault}=1")
    with pytest.raises(AmbiguousCreateError):
        provider(sim, timeout_seconds=1, read_attempts=5).create(model=MODEL, size="1280x720", seconds=4, prompt="x")
    creates = sim.stats()["requests_by_route"]["POST /v1beta1/{model}:predictLongRunning"]
    assert creates == 1  # one request: the SDK's read retries never apply to the create


def test_a_connection_that_never_opened_is_a_clean_refusal():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    veo = GoogleVeoProvider(api_key="k", base_url=f"http://127.0.0.1:{port}", read_attempts=1)
    with pytest.raises(TransientProviderError) as err:
        veo.create(model=MODEL, size="1280x720", seconds=4, prompt="x")
    assert not isinstance(err.value, AmbiguousCreateError)


def test_polls_ride_out_server_errors_with_the_sdks_retries(sim):
    veo = provider(sim, read_attempts=6)
    job = veo.create(model=MODEL, size="1280x720", seconds=4, prompt="Shot storm")
    sim.set_faults("500=0.25,503=0.15", seed=3)
    assert until_completed(veo, job.id).status == "completed"
    assert sim.stats()["faults_injected"]


def test_safety_filtered_result_is_a_failure_naming_the_reasons(sim):
    sim.set_faults("moderation=1")
    veo = provider(sim)
    job = until_completed(veo, veo.create(model=MODEL, size="1280x720", seconds=4, prompt="x").id)
    assert job.status == "failed" and job.error_code == "safety_filtered"
    assert "safety filter" in job.error_message and "usage guidelines" in job.error_message


def test_a_model_that_is_gone(tmp_path):
    with Simulator(SimulatorConfig(latency=0.3, shutdown=True, cache_dir=str(tmp_path))) as gone:
        veo = provider(gone)
        with pytest.raises(ModelUnavailableError, match="Publisher Model"):
            veo.create(model=MODEL, size="1280x720", seconds=4, prompt="x")
        assert veo.model_info(MODEL) is None


def clip(**fields) -> ClipSpec:
    """A Veo clip as the plan makes one: the built-in profile at the vertex endpoint."""
    route = route_endpoints(builtin_catalog(), {"GOOGLE_API_KEY": "AIza-simulated"}).route("vertex")
    defaults = dict(part=1, parts=1, profile=MODEL, model=MODEL, route=route, size="1280x720", seconds=4,
                    price_usd=Decimal("0.40"), expected_render_seconds=32.0)
    return ClipSpec(**{**defaults, **fields})


def spec(prompt: str = "Shot doubt") -> ClipSpec:
    return clip(shot_id="doubt", shot_index=0, prompt=prompt, clip_key="k" * 64)


def the_run_ended(ledger: Ledger) -> None:
    """What a rerun finds after the run that claimed its clips has exited: claims of a dead process."""
    from sqlalchemy import update

    from soraflow.ledger._tables import clips

    with ledger._write() as db:
        db.execute(update(clips).where(clips.c.state.in_(("claimed", "creating")))
                   .values(owner=f"{socket.gethostname()}:999999999:1", lease_until=0))


def test_a_lost_create_answer_leaves_the_clip_in_doubt_and_no_rerun_creates_it_again(sim, tmp_path):
    ledger, settings = Ledger(tmp_path / "ledger.sqlite"), Settings(state_dir=tmp_path)
    sim.set_faults("reset=1")
    with pytest.raises(ClipInDoubtError) as err:
        submit_clip(spec(), provider=provider(sim), ledger=ledger, settings=settings, work_dir=tmp_path)
    message = str(err.value)
    assert "clip doubt is in doubt" in message and "soraflow jobs adopt kkkkkkkkkkkkkkkk" in message and "re-create" in message
    sim.set_faults("")
    # A rerun (another process: the claim's owner is gone) finds the claim and stops again.
    the_run_ended(ledger)
    with pytest.raises(ClipInDoubtError):
        submit_clip(spec(), provider=provider(sim), ledger=ledger, settings=settings, work_dir=tmp_path)
    assert len(sim.jobs()) == 1  # paid once, never twice


def test_a_run_stopped_before_its_create_went_out_leaves_nothing_in_doubt(sim, tmp_path):
    """Killed after claiming the clip but before the request (a reference being prepared, a
    rate-limit slot awaited): the ledger knows nothing was sent, so the rerun creates it once."""
    ledger, settings = Ledger(tmp_path / "ledger.sqlite"), Settings(state_dir=tmp_path)
    c = spec("Shot stopped early")

    class Killed(BaseException):
        pass

    def killed() -> None:
        raise Killed  # where kill -9 lands: between the claim and the request

    with pytest.raises(Killed):
        submit_clip(c, provider=provider(sim), ledger=ledger, settings=settings, work_dir=tmp_path, before_create=killed)
    assert ledger.get(c.clip_key).state == "claimed" and len(sim.jobs()) == 0
    the_run_ended(ledger)
    created = submit_clip(c, provider=provider(sim), ledger=ledger, settings=settings, work_dir=tmp_path)
    assert created.created_here and len(sim.jobs()) == 1


def test_a_429_on_create_is_waited_out_and_the_clip_created_once(sim, tmp_path):
    ledger, settings = Ledger(tmp_path / "ledger.sqlite"), Settings(state_dir=tmp_path, poll_min_interval_seconds=0.1)
    sim.set_faults("429=0.6", seed=1)  # the first create is refused, the second accepted
    created = submit_clip(spec("Shot quota"), provider=provider(sim), ledger=ledger, settings=settings, work_dir=tmp_path)
    sim.set_faults("")
    assert created.created_here and ledger.get(created.clip_key).job_id == created.job_id
    assert sim.stats()["faults_injected"].get("429", 0) >= 1 and len(sim.jobs()) == 1


# --- twelve clips through the pipeline's own functions (the flow adds Prefect's retries) --------


def clip_specs(n: int, title: str) -> list[ClipSpec]:
    return [clip(shot_id=f"{title}{i:02d}", shot_index=i, prompt=f"Shot {title}{i:02d}\n{title} number {i}",
                 clip_key=f"{title}{i:02d}".ljust(64, "0")) for i in range(n)]


def generate_all(specs, sim, tmp_path, settings):
    """Create (once), poll and download each clip on its own thread, retrying a failed stage as
    the flow's Prefect task retries do (transient failures only)."""
    from concurrent.futures import ThreadPoolExecutor

    from soraflow.generation import download_clip

    ledger = Ledger(tmp_path / "ledger.sqlite")

    def stage(fn):
        for attempt in range(8):
            try:
                return fn()
            except TransientProviderError:
                if attempt == 7:
                    raise
                time.sleep(0.2)

    def one(spec):
        veo = provider(sim, read_attempts=4)
        created = stage(lambda: submit_clip(spec, provider=veo, ledger=ledger, settings=settings, work_dir=tmp_path))
        stage(lambda: poll_clip(spec, created.job_id, provider=veo, ledger=ledger, settings=settings))
        return stage(lambda: download_clip(spec, created.job_id, provider=veo, ledger=ledger, work_dir=tmp_path))

    with ThreadPoolExecutor(len(specs)) as pool:
        futures = [pool.submit(one, spec) for spec in specs]
    return [f.exception() or f.result() for f in futures], ledger


def test_fault_storm_on_reads_and_quota_refusals_on_creates_twelve_clips_twelve_operations(sim, tmp_path):
    settings = Settings(state_dir=tmp_path, poll_min_interval_seconds=0.1, poll_max_interval_seconds=0.5, retry_max_delay_seconds=1)
    # Creates meet quota refusals (clean: nothing was created); every read meets the whole storm.
    sim.set_faults("429=0.4", seed=7)
    specs = clip_specs(12, "storm")
    results, ledger = [], None
    from concurrent.futures import ThreadPoolExecutor

    ledger = Ledger(tmp_path / "ledger.sqlite")
    with ThreadPoolExecutor(12) as pool:
        list(pool.map(lambda s: submit_clip(s, provider=provider(sim), ledger=ledger, settings=settings, work_dir=tmp_path), specs))
    refused_creates = sim.stats()["faults_injected"].get("429", 0)
    sim.set_faults("429=0.15,500=0.1,502=0.05,503=0.05,reset=0.05,truncate=0.05", seed=8)
    results, _ = generate_all(specs, sim, tmp_path, settings)
    sim.set_faults("")
    failures = [r for r in results if isinstance(r, Exception)]
    assert not failures, failures
    for spec, clip in zip(specs, results):
        assert probe(Path(clip.path))["video"][0]["width"] == 1280, spec.shot_id
    assert refused_creates >= 1 and sum(sim.stats()["faults_injected"].values()) > refused_creates
    jobs = sim.jobs()
    assert len(jobs) == 12 and len({j["prompt"] for j in jobs}) == 12  # one operation per clip


def test_resets_and_server_errors_on_creates_leave_clips_in_doubt_never_paid_twice(sim, tmp_path):
    settings = Settings(state_dir=tmp_path, poll_min_interval_seconds=0.1, poll_max_interval_seconds=0.5, retry_max_delay_seconds=1)
    sim.set_faults("500=0.15,reset=0.15", seed=4)
    specs = clip_specs(12, "doubt")
    results, ledger = generate_all(specs, sim, tmp_path, settings)
    sim.set_faults("")
    in_doubt = [r for r in results if isinstance(r, ClipInDoubtError)]
    done = [r for r in results if not isinstance(r, Exception)]
    assert in_doubt and len(in_doubt) + len(done) == 12, results
    jobs = sim.jobs()
    prompts = [j["prompt"] for j in jobs]
    assert len(prompts) == len(set(prompts)) <= 12  # no clip paid twice
    # A rerun creates nothing for a clip in doubt; settling one (adopting the operation found at
    # the provider, as `soraflow jobs adopt` does) lets it finish with no new operation.
    the_run_ended(ledger)
    results, _ = generate_all(specs, sim, tmp_path, settings)
    assert sum(isinstance(r, ClipInDoubtError) for r in results) == len(in_doubt) and len(sim.jobs()) == len(jobs)
    by_prompt = {j["prompt"]: j["id"] for j in jobs}
    for spec in specs:
        entry = ledger.get(spec.clip_key)
        if entry.state == "in_doubt" and spec.prompt in by_prompt:
            from soraflow.providers import VideoJob

            ledger.record_job(spec.clip_key, VideoJob(id=by_prompt[spec.prompt], status="in_progress"), how="adopted")
    the_run_ended(ledger)
    results, _ = generate_all(specs, sim, tmp_path, settings)
    unsettled = [spec.prompt for spec in specs if spec.prompt not in by_prompt]  # sent, but the server never took it
    assert sum(isinstance(r, ClipInDoubtError) for r in results) == len(unsettled)
    assert len(sim.jobs()) == len(jobs) == 12 - len(unsettled)


def test_a_casts_reference_images_reach_veo_as_asset_references(sim, tmp_path):
    """A cast of two with images, on the standard model: the plan puts their images in the clip,
    the create sends them, and the request Veo received holds both, byte for byte."""
    from soraflow.plan import plan_storyboard
    from soraflow.storyboard import parse_storyboard

    keeper, lena = png(64, 36, (200, 30, 30)), png(64, 36, (30, 30, 200))
    (tmp_path / "keeper.png").write_bytes(keeper)
    (tmp_path / "lena.png").write_bytes(lena)
    board = parse_storyboard({
        "title": "Cast", "model": "veo-3.1-generate-001",
        "characters": {"keeper": {"anchors": ["navy coat"], "reference": "keeper.png"},
                       "lena": {"anchors": ["red raincoat"], "reference": "lena.png"}},
        "shots": [{"id": "meet", "seconds": 8, "visual": "They meet.", "cast": ["lena", "keeper"]}],
    }, base_dir=tmp_path)
    routing = route_endpoints(builtin_catalog(), {"GOOGLE_VERTEX_BASE_URL": sim.url, "GOOGLE_API_KEY": "AIza-simulated"})
    [clip] = plan_storyboard(board, catalog=builtin_catalog(), routing=routing).clips
    ledger, settings = Ledger(tmp_path / "ledger.sqlite"), Settings(state_dir=tmp_path)
    made = submit_clip(clip, provider=provider(sim), ledger=ledger, settings=settings, work_dir=tmp_path)
    received = sim.state.jobs.get(made.job_id, "google-genai").request
    assert received.reference_images == (lena, keeper)  # the shot's order
    assert "Character lena" in received.prompt and received.first_frame is None
