"""The README is the front door: at most 200 lines, its links lead somewhere, and every command
of its 5-minute tour runs as written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
TOUR = re.compile(r"--8<-- \[start:tour\][^\n]*\n(.*)\n[^\n]*--8<-- \[end:tour\]", re.S)
SHELL_BLOCK = re.compile(r"^```(?:bash|sh|shell)\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def tour_blocks() -> list[str]:
    tour = TOUR.search(README.read_text())
    assert tour, "the README marks its tour with --8<-- [start:tour] and [end:tour] (docs/tour.md includes it)"
    return SHELL_BLOCK.findall(tour.group(1))


def test_the_readme_is_a_front_door_of_at_most_200_lines():
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    assert "bash scripts/demo" in text and "bash scripts/test" in text
    # Every link into the repository leads to a file that is there (the picture, the docs pages).
    local = [link.split("#")[0] for link in LINK.findall(text) if not re.match(r"[a-z]+://", link)]
    assert "docs/images/lighthouse-contact-sheet.png" in local
    assert [link for link in local if link and not (ROOT / link).exists()] == []
    # The five steps of the tour, each with commands to run.
    assert len(tour_blocks()) == 5


@pytest.mark.slow
def test_every_command_of_the_tour_runs_as_written(prefect_server, simulator, tmp_path):
    """The tour's shell blocks, in order, in one shell, in an empty directory, on a machine with
    no key: a storyboard written, estimated, rendered on the embedded simulator, rendered again for
    nothing, then paid for at "Vertex AI". Vertex is the session's simulator, reached the way the
    google-genai SDK lets any caller move it (GOOGLE_VERTEX_BASE_URL); the blocks run unchanged."""
    from prefect.settings import PREFECT_API_URL

    blocks = tour_blocks()
    script = "".join(f'echo "::block {i}::"\n{block}' for i, block in enumerate(blocks, 1))
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    keep = ("PATH", "LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env |= {
        "HOME": str(home),  # the ledger (~/.soraflow) and Prefect's home are this test's
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # `soraflow`, as after `. .venv/bin/activate`
        "SORAFLOW_PREFECT_LOCAL_API": PREFECT_API_URL.value(),  # "unless one runs already": the session's server
        "SORAFLOW_SIMULATOR_LATENCY": "0.5",
        "GOOGLE_VERTEX_BASE_URL": simulator.url,
        "COLUMNS": "200",
    }
    simulator.set_faults("", seed=None)
    made_before = {job["id"] for job in simulator.jobs()}  # the session's simulator: other tests' videos are not the tour's
    done = subprocess.run(
        ["bash", "-eu", "-c", script], cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout
    assert "Traceback" not in done.stdout
    said = dict(zip(range(1, 6), re.split(r"::block \d::\n", done.stdout)[1:], strict=True))

    # 1-2. the storyboard is written and priced: two Veo 3.1 Fast clips, 4 + 8 s at $0.10/s
    assert (work / "storyboard.yaml").is_file()
    assert "$1.20" in said[2] and "harbour" in said[2] and "lantern" in said[2]

    # 3. rendered on the embedded simulator (no key anywhere), through Prefect
    assert "simulated" in said[3] and f"using the Prefect server running at {PREFECT_API_URL.value()}" in said[3]
    assert (home / ".soraflow" / "ledger.sqlite").is_file()

    # 4. the unchanged rerun pays nothing, with a budget of $0, and the ledger paid each clip once
    assert "up to date" in said[4] and "no request sent" in said[4]
    assert re.search(r"Harbour at Dawn.*\b2\b.*1\.20", said[4]), said[4]

    # 5. with a key, the same storyboard is paid for at "Vertex AI": two creates there, the film remade
    manifest = json.loads((work / "film" / "manifest.json").read_text())
    assert manifest["endpoints"] == {"vertex": "google-genai:default:vertex-express"}
    assert manifest["run"]["billed_usd"] == "1.20" and manifest["run"]["film_stitched"] is True
    made_there = {job["id"] for job in simulator.jobs()}
    assert {clip["job_id"] for clip in manifest["clips"]} <= made_there
    tour_prompts = [j for j in simulator.jobs() if j["id"] not in made_before and ("quiet harbour at dawn" in j.get("prompt", "") or "lights a lantern" in j.get("prompt", ""))]
    assert len(tour_prompts) == 2, tour_prompts
    assert (work / "film" / "film.mp4").stat().st_size > 0
