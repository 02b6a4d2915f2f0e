"""The review page in a real browser (Debian's headless chromium, driven by Playwright), against a
real paused flow run on a real Prefect server, through the real CLI (``soraflow review RUN_ID``).

One browser session: the page loads; every ``<video>`` plays (its time advances); a seek is
answered with 206; a retake refused by a spend cap is said; a decision that names an unknown shot
is a 422 and leaves the run paused; choosing a take and asking for a retake in the page resumes
the run with exactly that decision; the new take appears on the page and plays; approving ends
the run.

The run is a small flow of this module that does what the render flow's review step does with
the page's files: it writes ``review.json`` naming its run, pauses with ``wait_for_input`` = a
``RunInput`` with ``ReviewDecision``'s fields, and on resume stores each retake (a real MP4 made
by ffmpeg, through the storage layer) and rewrites ``review.json`` as it goes.
"""

from __future__ import annotations

import contextvars
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from pydantic import Field

from soraflow.review import REVIEW_STATE_NAME, ReviewDecision, ReviewState, ShotDecision, TakeReview
from soraflow.storage import LocalStorage

from .reviews import review_of, store_film, store_take, write_state

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync",
]
# Generous: up to 7 test processes share 2 cores.
STARTUP_SECONDS = 180
STEP_MS = 90_000


def _review_input():
    from prefect.input import RunInput

    class ReviewInput(RunInput):
        """The run form of a review: ReviewDecision's fields."""

        approve: bool = False
        shots: list[ShotDecision] = Field(default_factory=list, max_length=500)

    return ReviewInput


def _stops_for_review():
    from prefect import flow
    from prefect.flow_runs import pause_flow_run
    from prefect.runtime import flow_run

    review_input = _review_input()

    @flow(name="review-page-test", persist_result=False)
    def stops_for_review(out_dir: str) -> list[dict]:
        """Writes the review naming this run, pauses for a decision, stores the retakes asked for
        (rewriting the review as each is made and stored), and again, until approved."""
        out = Path(out_dir)
        path = out / ".work" / REVIEW_STATE_NAME
        state = ReviewState.model_validate_json(path.read_bytes()).model_copy(update={"flow_run_id": str(flow_run.id)})
        store, work = LocalStorage(Path(state.storage_url.removeprefix("file://"))), out / ".work" / "retakes"
        decisions = []
        while True:
            write_state(out, state)
            answer = pause_flow_run(wait_for_input=review_input, timeout=900, poll_interval=1, key=f"review-{state.round}")
            decision = ReviewDecision.model_validate(answer.model_dump())
            decisions.append(decision.model_dump(mode="json"))
            kept = {said.shot: said.keep for said in decision.shots if said.keep}
            state = state.model_copy(update={"shots": [s.model_copy(update={"chosen": kept.get(s.shot, s.chosen)}) for s in state.shots]})
            if decision.approve:
                write_state(out, state)
                return decisions
            for said in decision.shots:
                if said.retake is None:
                    continue
                shot = next(s for s in state.shots if s.shot == said.shot)
                number = max(t.take for t in shot.takes) + 1
                prompt = f"{shot.takes[0].prompt or 'the shot'}. {said.retake.prompt_change}".strip()
                asked = TakeReview(**{**shot.takes[0].model_dump(), "take": number, "clip_key": "0" * 64, "prompt": prompt,
                                      "seed": said.retake.seed, "state": "submitted", "storage_uri": None, "job_id": None})
                state = _with_take(state, said.shot, asked)
                write_state(out, state)  # the page shows the retake coming before it is stored
                stored = store_take(store, work, said.shot, number, prompt=prompt, seed=said.retake.seed)
                state = _with_take(state, said.shot, stored)
                state = state.model_copy(update={"spent_usd": state.spent_usd + stored.price_usd})
                write_state(out, state)
            state = state.model_copy(update={"round": state.round + 1})

    return stops_for_review


def _with_take(state: ReviewState, shot_id: str, take: TakeReview) -> ReviewState:
    shots = []
    for shot in state.shots:
        if shot.shot == shot_id:
            shot = shot.model_copy(update={"takes": [t for t in shot.takes if t.take != take.take] + [take]})
        shots.append(shot)
    return state.model_copy(update={"shots": shots})


class FlowInThread:
    """The flow run in a thread of this process (with the Prefect settings of the test harness)."""

    def __init__(self, flow, **parameters):
        self.result: list = []
        context = contextvars.copy_context()
        self.thread = threading.Thread(target=context.run, args=(self._run, flow, parameters), daemon=True)
        self.thread.start()

    def _run(self, flow, parameters):
        try:
            self.result.append(flow(**parameters))
        except BaseException as err:  # noqa: BLE001 - handed to the test
            self.result.append(err)


def _run_state(run_id: str):
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(UUID(run_id)).state


def _wait(condition, what: str, seconds: float = STARTUP_SECONDS):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (value := condition()):
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def paused_review(prefect_server, harbour, tmp_path):
    """A flow run paused for review of the harbour's takes, with a grainy cut large enough that a
    browser cannot hold it whole, and a retake of shot a refused by a spend cap."""
    out = tmp_path / "out"
    film = store_film(harbour.store, tmp_path / "film", seconds=12, grain=True)
    refused = TakeReview(
        take=2, clip_key="e" * 64, profile="sora-2", model="sora-2", endpoint="simulator", seconds=2, price_usd=Decimal("0.40"),
        state="refused", error="refused by the spend cap: the daily cap $1.00 would be exceeded by $0.40; nothing was paid",
    )
    takes = {**harbour.takes, "a": [*harbour.takes["a"], refused]}
    write_state(out, review_of(out, harbour.store.url, takes, film_uri=film))
    running = FlowInThread(_stops_for_review(), out_dir=str(out))
    state_path = out / ".work" / REVIEW_STATE_NAME

    def paused_run_id():
        state = ReviewState.model_validate_json(state_path.read_bytes())
        return state.flow_run_id if state.flow_run_id and _run_state(state.flow_run_id).is_paused() else None

    run_id = _wait(paused_run_id, "the flow run to pause for review")
    yield out, run_id, running
    if running.thread.is_alive():  # the test failed half way: leave no paused run behind
        from prefect.states import Cancelled
        from prefect import get_client

        with get_client(sync_client=True) as client:
            client.set_flow_run_state(UUID(run_id), Cancelled(), force=True)


@pytest.fixture
def review_cli(tmp_path):
    """``soraflow review ARG --port 0`` in a process of its own; yields the URL it printed."""
    started = []

    def start(argument: str) -> str:
        from prefect.settings import PREFECT_API_URL

        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SORAFLOW_", "AWS_"))}
        env |= {"PREFECT_API_URL": str(PREFECT_API_URL.value()), "PREFECT_HOME": str(tmp_path / "cli-prefect"),
                "SORAFLOW_STATE_DIR": str(tmp_path / "cli-state"), "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(
            [sys.executable, "-m", "soraflow.cli", "review", argument, "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        started.append(process)
        line = _wait(lambda: process.stdout.readline() or process.poll() is not None, "the review page's URL")
        url = re.search(r"http://\S+\?token=\S+", line) if isinstance(line, str) else None
        assert url, f"no URL printed: {line!r} {process.stderr.read() if process.poll() is not None else ''}"
        return url.group(0)

    yield start
    for process in started:
        process.terminate()
        assert process.wait(timeout=30) == 0  # Ctrl-C / SIGTERM ends it cleanly
        process.stdout.close()
        process.stderr.close()


@pytest.mark.skipif(not Path(CHROMIUM).exists() or shutil.which("ffmpeg") is None, reason="needs chromium and ffmpeg")
def test_the_review_page_in_a_browser_resumes_the_run_and_shows_the_new_take(paused_review, review_cli):
    from playwright.sync_api import sync_playwright

    out, run_id, running = paused_review
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

            # the page loads: the cut and all five stored takes, and the refused retake said plainly
            page.wait_for_selector("article.take[data-shot='c'][data-take='2'] video", timeout=STEP_MS)
            assert page.locator("video").count() == 6
            assert page.locator("article.take[data-shot='a'][data-take='2'] video").count() == 0
            assert "spend cap" in page.locator("#notices").inner_text()
            assert "Not stored yet (refused)" in page.locator("article.take[data-shot='a'][data-take='2']").inner_text()
            assert page.locator("#status").inner_text() == "The run waits for your decision."

            # a seek is answered with 206: the cut, before it plays, jumps near its end
            page.wait_for_function("() => document.getElementById('film').readyState >= 1", timeout=STEP_MS)
            buffered_end = page.evaluate("(() => { const v = document.getElementById('film'); return v.buffered.length ? v.buffered.end(v.buffered.length - 1) : 0; })()")
            duration = page.evaluate("document.getElementById('film').duration")
            assert buffered_end < duration - 2, "the browser holds the whole cut already: nothing to seek to"
            seen = len(media)
            page.evaluate("""new Promise(done => { const v = document.getElementById('film');
                v.addEventListener('seeked', done, {once: true}); v.currentTime = v.duration - 1; })""")
            seeks = [r for r in media[seen:] if r.url.split("?")[0].endswith("/media/film") and r.request.headers.get("range", "bytes=0-") != "bytes=0-"]
            assert seeks, [(r.url, r.status, r.request.headers.get("range")) for r in media[seen:]]
            assert seeks[0].status == 206 and seeks[0].headers["accept-ranges"] == "bytes", (seeks[0].status, seeks[0].headers)
            first, size = _ranged(seeks[0])
            assert first > size // 2

            # every <video> plays: its time advances
            page.evaluate("Promise.all([...document.querySelectorAll('video')].map(v => { v.muted = true; v.currentTime = 0; return v.play(); }))")
            page.wait_for_function("() => [...document.querySelectorAll('video')].every(v => v.currentTime > 0.5)", timeout=STEP_MS)

            # choose take 2 of shot b, ask for a retake of shot c, and send
            page.check("article.take[data-shot='b'][data-take='2'] input.keep")
            page.fill("section.shot[data-shot='c'] textarea.retake-change", "the boat is red")
            page.click("#send")
            page.wait_for_selector("#status:has-text('Sent: the run resumes')", timeout=STEP_MS)

            # the run resumes with that decision, stores the retake, and the page shows it, playing
            new_take = "article.take[data-shot='c'][data-take='3']"
            page.wait_for_selector(f"{new_take} video", timeout=STEP_MS)
            assert "the boat is red" in page.locator(f"{new_take} .prompt").inner_text()
            page.evaluate(f"(() => {{ const v = document.querySelector(\"{new_take} video\"); v.muted = true; return v.play(); }})()")
            page.wait_for_function(f"() => document.querySelector(\"{new_take} video\").currentTime > 0.5", timeout=STEP_MS)
            assert "in the film" in page.locator("article.take[data-shot='b'][data-take='2']").inner_text()
            assert "in the film" not in page.locator("article.take[data-shot='b'][data-take='1']").inner_text()

            # the run waits again (round 2); approving from the page ends it
            page.wait_for_selector("#approve:not([disabled])", timeout=STEP_MS)
            assert "Review round 2" in page.locator("#summary").inner_text()
            page.click("#approve")
            page.wait_for_selector("#status:has-text('Approved')", timeout=STEP_MS)
        finally:
            browser.close()

    running.thread.join(timeout=STEP_MS / 1000)
    assert not running.thread.is_alive()
    assert running.result[0] == [
        {"approve": False, "shots": [{"shot": "b", "keep": 2, "retake": None},
                                     {"shot": "c", "keep": None, "retake": {"prompt_change": "the boat is red", "seed": None}}]},
        {"approve": True, "shots": []},
    ]
    assert _run_state(run_id).is_completed()


def _ranged(response) -> tuple[int, int]:
    match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", response.headers["content-range"])
    assert match, response.headers
    return int(match.group(1)), int(match.group(3))
