"""The review page in a real browser (Debian's headless chromium, driven by Playwright), on the
review of a real render: render-storyboard with 2 takes of 3 shots and ``review: true``, run ad
hoc on the simulator, paused for its decision on a real Prefect server, and the page served by
the real CLI (``soraflow review RUN_ID``).

One browser session: the page loads (the six takes and the cut of the chosen ones); every ``<video>`` plays (its time advances); every ranged request is answered 206, and a seek to the middle of a take too; a seek is
answered with 206; a decision naming an unknown shot or take is a 422 naming the field and the
run stays paused; keeping take 2 of shot b and asking for a retake of shot c in the page resumes
the run, which makes exactly that one clip, and the new take appears on the page and plays; a
retake over the daily spend cap is refused, nothing is paid, and the page says so; approving in
the page stitches the film from the chosen takes (checked by its pixels).
"""

from __future__ import annotations

import contextvars
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from uuid import UUID

import httpx
import pytest
import yaml

from soraflow.review import REVIEW_STATE_NAME, ReviewState

from ..simulator.media import band_colour, close_colours, corner_colour

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync",
]
# Generous: up to 7 test processes may share 2 cores.
STARTUP_SECONDS = 240
STEP_MS = 120_000


class FlowInThread:
    """render-storyboard in a thread of this process, as the CLI runs it (it pauses there), with
    the Prefect settings of the test harness."""

    def __init__(self, flow, **parameters):
        self.state = None
        context = contextvars.copy_context()
        self.thread = threading.Thread(target=context.run, args=(self._run, flow, parameters), daemon=True)
        self.thread.start()

    def _run(self, flow, parameters):
        self.state = flow(**parameters, return_state=True)


def _run_state(run_id: str):
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(UUID(run_id)).state


def _wait(condition, what: str, seconds: float = STARTUP_SECONDS):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def paused_render(prefect_server, sim_env, tmp_path, monkeypatch):
    """render-storyboard paused for review 1 of 2 takes of shots a, b and c ($0.40 each); the
    daily spend cap leaves room for one retake."""
    from soraflow.flows.render import RenderRequest, render_storyboard

    monkeypatch.setenv("SORAFLOW_REVIEW_POLL_SECONDS", "1")
    monkeypatch.setenv("SORAFLOW_SPEND_CAP_DAY_USD", "2.80")
    tag = uuid.uuid4().hex[:8]  # prompts of its own: nothing comes from another test's ledger or cache
    storyboard = tmp_path / "storyboard.yaml"
    storyboard.write_text(yaml.safe_dump({
        "title": f"Harbour {tag}", "takes": 2, "review": True,
        "shots": [{"id": s, "seconds": 4, "visual": f"The harbour, view {s} ({tag})"} for s in ("a", "b", "c")],
    }))
    out = tmp_path / "out"
    jobs = len(sim_env.jobs())
    running = FlowInThread(render_storyboard, request=RenderRequest(storyboard_path=str(storyboard), out_dir=str(out)))
    state_path = out / ".work" / REVIEW_STATE_NAME

    def paused_run_id():
        assert running.thread.is_alive(), f"the render ended: {running.state}"
        if not state_path.exists():
            return None
        state = ReviewState.model_validate_json(state_path.read_bytes())
        return state.flow_run_id if _run_state(state.flow_run_id).is_paused() else None

    run_id = _wait(paused_run_id, "the render to pause for its review")
    yield out, run_id, running, lambda: len(sim_env.jobs()) - jobs
    if running.thread.is_alive():  # the test failed half way: leave no paused run behind
        from prefect import get_client
        from prefect.states import Cancelled

        with get_client(sync_client=True) as client:
            client.set_flow_run_state(UUID(run_id), Cancelled(), force=True)


@pytest.fixture
def review_cli(tmp_path):
    """``soraflow review ARG --port 0`` in a process of its own; returns the URL it printed."""
    started = []

    def start(argument: str) -> str:
        from prefect.settings import PREFECT_API_URL

        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SORAFLOW_", "AWS_", "OPENAI_"))}
        env |= {"PREFECT_API_URL": str(PREFECT_API_URL.value()), "PREFECT_HOME": str(tmp_path / "cli-prefect"),
                "SORAFLOW_STATE_DIR": str(tmp_path / "cli-state"), "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(
            [sys.executable, "-m", "soraflow.cli", "review", argument, "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        started.append(process)
        line = process.stdout.readline()
        url = re.search(r"http://\S+\?token=\S+", line)
        assert url, f"no URL printed: {line!r} {process.stderr.read() if process.poll() is not None else ''}"
        return url.group(0)

    yield start
    for process in started:
        process.terminate()
        assert process.wait(timeout=30) == 0  # SIGTERM ends it cleanly
        process.stdout.close()
        process.stderr.close()


def test_the_review_page_in_a_browser_resumes_the_render_and_shows_the_new_take(paused_render, review_cli, sim_env):
    from playwright.sync_api import sync_playwright

    out, run_id, running, new_jobs = paused_render
    assert new_jobs() == 6
    url = review_cli(run_id)  # the run's id: its output directory comes from the Prefect API
    base, token = url.split("/?token=")

    # A decision naming an unknown shot or take is refused, naming the field; the run stays paused.
    auth = {"Authorization": f"Bearer {token}"}
    unknown = httpx.post(f"{base}/api/decision", json={"shots": [{"shot": "zz", "keep": 1}, {"shot": "b", "keep": 9}]}, headers=auth, timeout=30)
    assert unknown.status_code == 422
    assert [p["field"] for p in unknown.json()["problems"]] == ["shots[0].shot", "shots[1].keep"]
    assert httpx.post(f"{base}/api/decision", json={"shots": [{"shot": "b", "keep": 2}]}, timeout=30).status_code == 401
    assert _run_state(run_id).is_paused()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            media = []
            page.on("response", lambda r: media.append(r) if "/media/" in r.url else None)
            page.goto(url)

            # the page loads: the six stored takes, and the cut of the chosen ones
            page.wait_for_selector("article.take[data-shot='c'][data-take='2'] video", timeout=STEP_MS)
            assert page.locator("article.take video").count() == 6
            page.wait_for_selector("#film-section:not([hidden]) #film[src]", timeout=STEP_MS)
            assert page.locator("#status").inner_text() == "The run waits for your decision."

            # a seek is answered with 206: take 2 of shot c jumps near its end
            take = "article.take[data-shot='c'][data-take='2'] video"
            page.wait_for_function(f"() => document.querySelector(\"{take}\").readyState >= 1", timeout=STEP_MS)
            page.evaluate(f"""new Promise(done => {{ const v = document.querySelector("{take}");
                v.addEventListener('seeked', done, {{once: true}}); v.currentTime = v.duration - 0.5; }})""")
            # Every ranged request the video elements made (their first bytes=0-, a seek past what
            # they buffered) is answered 206 from where it asked, to the end.
            ranged = [r for r in media if "range" in r.request.headers]
            assert ranged, [(r.url, r.status) for r in media]
            for seek in ranged:
                assert seek.status == 206 and seek.headers["accept-ranges"] == "bytes", (seek.status, seek.headers)
                first, last, size = map(int, re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", seek.headers["content-range"]).groups())
                asked = int(re.fullmatch(r"bytes=(\d+)-\d*", seek.request.headers["range"]).group(1))
                assert first == asked <= last == size - 1
            # A small clip may be buffered whole, so its seek sends nothing: the seek's request, from
            # the page, to the middle of the take.
            answer = page.evaluate(f"""(async () => {{ const src = document.querySelector("{take}").currentSrc;
                const total = Number((await fetch(src, {{headers: {{Range: 'bytes=0-0'}}}})).headers.get('content-range').split('/')[1]);
                const r = await fetch(src, {{headers: {{Range: 'bytes=' + Math.floor(total / 2) + '-'}}}});
                return [total, r.status, r.headers.get('content-range'), (await r.arrayBuffer()).byteLength]; }})()""")
            total = answer[0]
            assert answer == [total, 206, f"bytes {total // 2}-{total - 1}/{total}", total - total // 2] and total > 1000, answer

            # every <video> plays: its time advances
            page.evaluate("Promise.all([...document.querySelectorAll('video')].map(v => { v.muted = true; v.currentTime = 0; return v.play(); }))")
            page.wait_for_function("() => [...document.querySelectorAll('video')].every(v => v.currentTime > 0.5)", timeout=STEP_MS)
            assert page.locator("video").count() == 7

            # keep take 2 of shot b, ask for a retake of shot c, and send
            page.check("article.take[data-shot='b'][data-take='2'] input.keep")
            page.fill("section.shot[data-shot='c'] textarea.retake-change", "the boat is red")
            page.click("#send")
            page.wait_for_selector("#status:has-text('Sent: the run resumes')", timeout=STEP_MS)

            # the run makes exactly that one clip; the page shows the new take, and it plays
            new_take = "article.take[data-shot='c'][data-take='3']"
            page.wait_for_selector(f"{new_take} video", timeout=STEP_MS)
            page.evaluate(f"(() => {{ const v = document.querySelector(\"{new_take} video\"); v.muted = true; return v.play(); }})()")
            page.wait_for_function(f"() => document.querySelector(\"{new_take} video\").currentTime > 0.5", timeout=STEP_MS)
            page.wait_for_selector("#approve:not([disabled])", timeout=STEP_MS)  # review 2
            assert new_jobs() == 7 and sim_env.jobs()[-1]["prompt"].count("the boat is red") == 1
            assert "in the film" in page.locator("article.take[data-shot='b'][data-take='2']").inner_text()
            assert "in the film" in page.locator(new_take).inner_text()  # a retake is its shot's choice once made
            assert "Review round 2" in page.locator("#summary").inner_text()

            # a retake over the daily spend cap: refused, nothing paid, said on the page
            page.fill("section.shot[data-shot='a'] textarea.retake-change", "the gulls are white")
            page.click("#send")
            refused = "article.take[data-shot='a'][data-take='3']"
            page.wait_for_selector(f"{refused} .error", timeout=STEP_MS)
            page.wait_for_selector("#approve:not([disabled])", timeout=STEP_MS)  # review 3
            assert "Not stored yet (refused)" in page.locator(refused).inner_text()
            assert page.locator(f"{refused} video").count() == 0
            assert "spend cap" in page.locator("#notices").inner_text() and "nothing was created" in page.locator("#notices").inner_text()
            assert new_jobs() == 7

            # approve: the run stitches the film from the chosen takes
            page.click("#approve")
            page.wait_for_selector("#status:has-text('Approved')", timeout=STEP_MS)
        finally:
            browser.close()

    running.thread.join(timeout=STEP_MS / 1000)
    assert not running.thread.is_alive() and running.state.is_completed(), running.state
    assert new_jobs() == 7
    manifest = json.loads((out / "manifest.json").read_text())
    assert {(c["shot_id"], c["take"]) for c in manifest["clips"] if c["chosen"]} == {("a", 1), ("b", 2), ("c", 3)}
    # the film shows b's take 2 and c's retake: each shot's picture is its chosen take's
    clips = {(c["shot_id"], c["take"]): c for c in manifest["clips"]}
    local = {k: next((out / ".work" / "clips").glob(f"{k[0]}-p1-{'' if k[1] == 1 else f't{k[1]}-'}[0-9a-f]*.mp4")) for k in clips}
    for shot, start, chosen, other in (("b", 4, 2, 1), ("c", 8, 3, 1)):
        in_film = (band_colour(out / "film.mp4", start + 1.5), corner_colour(out / "film.mp4", start + 1.5))
        looks = {t: (band_colour(local[(shot, t)], 1.5), corner_colour(local[(shot, t)], 1.5)) for t in (chosen, other)}
        assert all(close_colours(x, y) for x, y in zip(in_film, looks[chosen])), f"shot {shot}: the film does not show take {chosen}"
        assert not all(close_colours(x, y) for x, y in zip(in_film, looks[other])), f"shot {shot}: take {other} looks like take {chosen}"
