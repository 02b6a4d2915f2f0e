"""The typer CLI: estimate, dry run, budget, and render on the embedded simulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import ffmpeg
import pytest
from typer.testing import CliRunner

from soraflow.cli import app

runner = CliRunner()


def test_estimate_prints_every_clip_and_total(lighthouse):
    res = runner.invoke(app, ["estimate", str(lighthouse)])
    assert res.exit_code == 0, res.output
    assert res.output.count("sora-2") == 4
    assert "$0.40" in res.output and "$2.80" in res.output


def test_estimate_of_bad_storyboard_names_the_field(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("title: t\nshots:\n  - {id: a, seconds: 5, visual: v}\n")
    res = runner.invoke(app, ["estimate", str(f)])
    assert res.exit_code == 2
    assert "shots[0].seconds: 5 cannot be made from sora-2 clip lengths 4, 8, 12 s" in res.output


def test_dry_run_creates_nothing(lighthouse, tmp_path):
    res = runner.invoke(app, ["render", str(lighthouse), "--out", str(tmp_path / "out"), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "$2.80" in res.output and "nothing was created" in res.output
    assert not (tmp_path / "out").exists()


def test_budget_refuses_before_starting(lighthouse, tmp_path):
    res = runner.invoke(app, ["render", str(lighthouse), "--out", str(tmp_path / "out"), "--budget", "1"])
    assert res.exit_code == 2
    assert "estimated cost $2.80 exceeds the budget $1.00" in res.output


def test_render_without_key_on_a_new_machine_uses_embedded_simulator(lighthouse, tmp_path):
    """README command 1 as a fresh machine runs it: no key, no Prefect server, an empty PREFECT_HOME.

    A real process, because Prefect reads its settings once at import, and the first start of
    its temporary server (migrating a new database) is what once took longer than Prefect's
    default startup timeout.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "OPENAI_"))}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        SORAFLOW_STATE_DIR=str(tmp_path / "state"),
        SORAFLOW_SIMULATOR_LATENCY="0.5",
    )
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "soraflow.cli", "render", str(lighthouse), "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=400,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "No credentials for any endpoint: this film is simulated" in output
    assert "Failed to send telemetry" not in output
    assert abs(float(ffmpeg.probe(str(out / "film.mp4"))["format"]["duration"]) - 28) <= 0.2
    assert len(json.loads((out / "manifest.json").read_text())["clips"]) == 4


def test_a_hostile_title_is_shown_as_text_with_control_characters_escaped(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text('title: "[/][bold]\\e]0;pwned\\a\\e[2J"\nshots:\n  - {id: a, seconds: 4, visual: v}\n')
    res = runner.invoke(app, ["estimate", str(f)])
    assert res.exit_code == 0, res.output
    assert "\x1b" not in res.output and "\x07" not in res.output
    assert "[/][bold]\\x1b]0;pwned\\x07\\x1b[2J — estimate" in res.output


@pytest.mark.parametrize("budget", ["nan", "inf", "-inf", "-3"])
def test_a_budget_that_is_not_a_finite_amount_is_refused(lighthouse, tmp_path, budget):
    res = runner.invoke(app, ["render", str(lighthouse), "--out", str(tmp_path / "out"), "--budget", budget])
    assert res.exit_code == 2, res.output
    assert "is not allowed: give a finite amount of USD, 0 or more" in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
