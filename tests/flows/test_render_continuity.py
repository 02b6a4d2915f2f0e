"""Continuity through the whole journey on the simulator: a shot chained by its last frames
(and a kill -9 in the middle of the chain), shots made of a create and extensions (Sora's
POST /videos/extensions, Veo's generate_videos with a video), and a remix of another shot. A real Prefect server, the simulator over HTTP, real ffmpeg."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path

import ffmpeg
import httpx
import pytest
import yaml

from soraflow.flows.render import RenderRequest, render_storyboard
from soraflow.simulator.embedded import running_simulator
from tests.flows.processes import SimProcess, finish, render
from tests.flows.test_render import streams
from tests.flows.test_render_veo import no_credentials  # noqa: F401 - a fixture
from tests.flows.test_resilience import _veo_env, _veo_operations, env  # noqa: F401 - a fixture

pytestmark = pytest.mark.usefixtures("prefect_server")

THUMB = (160, 90)  # frames are compared at this size: enough to tell two pictures apart


def frame(path: Path, *, at: float | None = None, last: bool = False) -> bytes:
    """One RGB frame of ``path`` at ``at`` seconds (or its last), scaled to THUMB."""
    stream = ffmpeg.input(str(path), sseof=-0.5) if last else ffmpeg.input(str(path), ss=at or 0)
    out, _ = (
        stream.video.filter("scale", *THUMB)
        .output("pipe:", format="rawvideo", pix_fmt="rgb24", **({"update": 1} if last else {"vframes": 1}))
        .run(capture_stdout=True, capture_stderr=True)
    )
    return out[-THUMB[0] * THUMB[1] * 3 :]


def difference(a: bytes, b: bytes) -> float:
    """Mean absolute difference per channel, 0-255."""
    assert len(a) == len(b) == THUMB[0] * THUMB[1] * 3
    return sum(abs(x - y) for x, y in zip(a, b)) / len(a)


def changed_share(a: bytes, b: bytes) -> float:
    """The share of pixels that changed by more than 40 in a channel: what tells two pictures
    apart even when the simulator gave them close colours (their text and drawing differ). The
    same picture half a second on (its moving dot and clock) changes about 0.2 % of them; a
    picture of other text, 2.5 % and more."""
    assert len(a) == len(b) == THUMB[0] * THUMB[1] * 3
    pixels = len(a) // 3
    return sum(1 for i in range(0, len(a), 3) if max(abs(a[i] - b[i]), abs(a[i + 1] - b[i + 1]), abs(a[i + 2] - b[i + 2])) > 40) / pixels


def ledger_state(state_dir: Path, shot: str, part: int) -> str | None:
    path = state_dir / "ledger.sqlite"
    if not path.exists():
        return None
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        row = db.execute("SELECT state FROM clips WHERE shot_id = ? AND part = ?", (shot, part)).fetchone()
        return row[0] if row else None
    except sqlite3.OperationalError:
        return None
    finally:
        db.close()


def test_last_frame_chain_starts_each_part_on_the_last_frame_and_resumes_after_kill_9(tmp_path, env):  # noqa: F811
    sim = SimProcess(tmp_path, "--latency", "1")
    try:
        env = _veo_env(env, sim, tmp_path)
        board = {
            "title": "Chain", "model": "veo-3.1-fast-generate-001", "size": "1280x720",
            "shots": [{"id": "climb", "seconds": 24, "visual": "The keeper climbs the spiral stairs.", "continuity": "last_frame"}],
        }
        sb = tmp_path / "chain.yaml"
        sb.write_text(yaml.safe_dump(board))
        out = tmp_path / "out"
        state_dir = Path(env["SORAFLOW_STATE_DIR"])

        proc = render(sb, out, env)
        deadline = time.time() + 180
        while ledger_state(state_dir, "climb", 2) != "completed" and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        at_kill = len(_veo_operations(sim))
        assert at_kill == 2, f"{at_kill} operations when part 2 had completed: the parts did not run in sequence"

        rerun = render(sb, out, env)
        output = finish(rerun)
        assert rerun.returncode == 0, output
        operations = _veo_operations(sim)
        assert len(operations) == 3, "the rerun created only part 3"
        manifest = json.loads((out / "manifest.json").read_text())
        assert [c["generated_this_run"] for c in manifest["clips"]] == [False, False, True]
        assert [c["made_from"] and c["made_from"]["kind"] for c in manifest["clips"]] == [None, "last_frame", "last_frame"]

        clips = [Path(c["storage_uri"].removeprefix("file://")) for c in manifest["clips"]]
        for before, after in zip(clips, clips[1:]):
            assert difference(frame(before, last=True), frame(after, at=0)) < 4.0, (before.name, after.name)
        # the measure tells pictures apart: a part's opening is not the end of the part after it
        assert changed_share(frame(clips[0], at=0), frame(clips[2], last=True)) > 0.01
        assert abs(streams(out / "film.mp4")["duration"] - 24) <= 0.1
    finally:
        sim.stop()


def test_extension_and_remix_through_the_film_and_a_rerun_reuses_them(no_credentials, tmp_path):  # noqa: F811
    board = {
        "title": "Extend and Remix", "model": "sora-2", "size": "1280x720",
        "shots": [
            {"id": "climb", "seconds": 24, "visual": "The keeper climbs the spiral stairs.", "continuity": "extend"},
            {"id": "day", "seconds": 4, "visual": "The lamp room by day."},
            {"id": "night", "seconds": 4, "visual": "The same lamp room at night, the lamp lit.", "remix_of": "day"},
            # Veo's extension: a first clip, then 7 s more by generate_videos(video=...)
            {"id": "tide", "seconds": 15, "visual": "The tide comes in over the rocks.", "continuity": "extend",
             "model": "veo-3.1-fast-generate-001"},
        ],
    }
    sb = tmp_path / "board.yaml"
    sb.write_text(yaml.safe_dump(board))
    request = RenderRequest(storyboard_path=str(sb), out_dir=str(tmp_path / "out"))
    state = render_storyboard(request, return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    manifest = json.loads(Path(result.manifest).read_text())
    sim = running_simulator()
    ids = {c["job_id"] for c in manifest["clips"]}
    jobs = {j["id"]: j for j in httpx.get(f"{sim.url}/_sim/jobs").json()["data"] if j["id"] in ids}
    by_part = {(c["shot_id"], c["part"]): jobs[c["job_id"]] for c in manifest["clips"]}

    # one create plus one extension; the extension's video is the whole shot
    first, extension = by_part[("climb", 1)], by_part[("climb", 2)]
    assert (first["kind"], extension["kind"], extension["source"]) == ("create", "extension", first["id"])
    assert (first["seconds"], extension["seconds"]) == ("12", "24")
    # the remix is linked to its source, as the API says it
    day, night = by_part[("day", 1)], by_part[("night", 1)]
    assert night["kind"] == "remix" and night["remixed_from_video_id"] == day["id"]

    # Veo: one create of 8 s plus one extension of 7 s, whose operation plays both
    tide, tide_more = by_part[("tide", 1)], by_part[("tide", 2)]
    assert (tide["kind"], tide_more["kind"], tide["seconds"], tide_more["seconds"]) == ("create", "extension", "8", "15")

    # the film plays each extension once (its source's seconds, then the new ones): climb, day, night, tide
    film = Path(result.film)
    assert abs(streams(film)["duration"] - 47) <= 0.1
    part1 = Path(next(c for c in manifest["clips"] if c["part"] == 1 and c["shot_id"] == "climb")["storage_uri"].removeprefix("file://"))
    assert difference(frame(film, at=6), frame(part1, at=6)) < 4.0
    assert changed_share(frame(film, at=6), frame(film, at=18)) > 0.01  # the new seconds are new pictures
    assert changed_share(frame(film, at=6), frame(film, at=6.5)) < 0.01  # (the same picture half a second on is not)
    tide_first = Path(next(c for c in manifest["clips"] if (c["shot_id"], c["part"]) == ("tide", 1))["storage_uri"].removeprefix("file://"))
    assert difference(frame(film, at=32 + 4), frame(tide_first, at=4)) < 4.0  # Veo's source plays first
    assert changed_share(frame(film, at=32 + 4), frame(film, at=32 + 12)) > 0.01  # then its 7 new seconds
    # the estimate is what was billed: generated seconds, each extension's new seconds only
    assert manifest["totals"]["billed_seconds"] == 32 + 15
    assert manifest["totals"]["billed_usd"] == result.estimated_usd == "4.70"  # 32 s of sora-2, 15 s of Veo fast, at 0.10

    again = render_storyboard(request, return_state=True)
    assert again.is_completed(), again.message
    rerun = json.loads(Path(again.result().manifest).read_text())
    assert [c["job_id"] for c in rerun["clips"]] == [c["job_id"] for c in manifest["clips"]]
    assert not any(c["generated_this_run"] for c in rerun["clips"])
    assert len([j for j in httpx.get(f"{sim.url}/_sim/jobs").json()["data"] if j["id"] in ids]) == 6
