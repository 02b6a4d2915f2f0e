"""Hostile input, fuzzed: seeded storyboards and CLI options through `estimate` and
`render --dry-run` in-process, and the refused ones again through `render` itself against the
simulator. Every case ends in a valid plan or one clean error, within 2 s of CPU, with no
traceback and no create.

The generator mixes structural mutations of a valid storyboard (wrong types, hostile strings,
huge and non-finite numbers, deep nesting, long lists, unknown keys), raw documents (duplicate
keys, alias bombs, invalid UTF-8, NUL bytes, unsafe YAML tags, 10,000-level nesting), special
files (a FIFO, /dev/zero, a directory, over-long paths, a symlink loop), hostile references
(a symlink to /etc/passwd named .png, a FIFO) and hostile options (--budget nan, --out on a
file, --storage with userinfo or a 300-character prefix segment).
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from soraflow.cli import app

SEED = 20261129
CASES = 320
# The bound on each case's work is CPU time (this thread's): on a shared 2-core machine the
# wall clock measures the neighbours too. A case that blocks (a FIFO read) spends no CPU, so
# the wall clock still bounds each case, generously.
LIMIT_CPU_SECONDS = 2.0
LIMIT_WALL_SECONDS = 30.0
KEEPER = Path(__file__).resolve().parents[2] / "examples" / "lighthouse" / "images" / "keeper.png"

HOSTILE_STRINGS = [
    "", " ", "\x1b[2J\x1b]0;pwned\x07", "[/][bold red]markup", "\u202eevil\u202c", "..", "../../etc/passwd", "a\x00b",
    "x" * 5000, "é" * 300, "🎬" * 100, "%s%n%x", "{{7*7}}", "$(reboot)", "\r\nSet-Cookie: x", "\ud800", "null", "0x10",
]
HOSTILE_VALUES = [
    None, True, False, 0, -1, 4, 7, 8, 12, 16, 20, 597, 600, 601, 10**40, 1.5, 8.0, -0.0, 1e308, float("nan"), float("inf"),
    [], {}, [1, 2, 3], {"a": 1}, ["x"] * 1000, list(range(100)),
]
FIELDS = ["title", "model", "size", "style", "transition", "palette", "identity_anchors", "shots", "base_dir", "extra"]
SHOT_FIELDS = ["id", "seconds", "visual", "camera", "lighting", "audio", "dialogue", "input_reference", "model", "size", "style", "transition", "cast"]
CAMERA_FIELDS = ["movement", "speed", "framing", "zoom"]


def _nested(depth: int):
    value: object = "deep"
    for _ in range(depth):
        value = [value]
    return value


def _hostile(rng: random.Random):
    roll = rng.random()
    if roll < 0.4:
        return rng.choice(HOSTILE_STRINGS)
    if roll < 0.9:
        return rng.choice(HOSTILE_VALUES)
    return _nested(rng.choice([5, 31, 33, 200]))


def _valid_board(rng: random.Random) -> dict:
    shots = []
    for i in range(rng.randint(1, 4)):
        shot = {"id": f"s{i}", "seconds": rng.choice([4, 8, 12, 16, 24]), "visual": f"shot {i}: a lighthouse at dusk"}
        if rng.random() < 0.3:
            shot["camera"] = {"movement": "pan_left", "speed": "slow", "framing": "wide"}
        if rng.random() < 0.2:
            shot["dialogue"] = [{"speaker": "Keeper", "line": "Another storm is coming."}]
        shots.append(shot)
    return {"title": "Fuzz", "model": rng.choice(["sora-2", "sora-2-pro"]), "size": "1280x720", "shots": shots}


def _mutated_board(rng: random.Random, tmp: Path) -> dict:
    board = _valid_board(rng)
    for _ in range(rng.randint(1, 4)):
        where = rng.random()
        if where < 0.35:
            key = rng.choice(FIELDS)
            if rng.random() < 0.2:
                board.pop(key, None)
            else:
                board[key] = _hostile(rng)
        elif isinstance(board.get("shots"), list) and board["shots"] and isinstance(board["shots"][0], dict):
            shot = rng.choice(board["shots"])
            if not isinstance(shot, dict):
                continue
            key = rng.choice(SHOT_FIELDS)
            if key == "input_reference" and rng.random() < 0.6:
                shot[key] = _hostile_reference(rng, tmp)
            elif key == "camera" and rng.random() < 0.5:
                shot[key] = {rng.choice(CAMERA_FIELDS): _hostile(rng)}
            elif rng.random() < 0.15:
                shot.pop(key, None)
            else:
                shot[key] = _hostile(rng)
    return board


def _hostile_reference(rng: random.Random, tmp: Path) -> str:
    kind = rng.choice(["passwd", "fifo", "dir", "long", "name", "zero", "real", "absent", "loop"])
    n = rng.randrange(10**9)
    if kind == "passwd":
        (tmp / f"ref{n}.png").symlink_to("/etc/passwd")
        return f"ref{n}.png"
    if kind == "fifo":
        os.mkfifo(tmp / f"ref{n}.png")
        return f"ref{n}.png"
    if kind == "dir":
        (tmp / f"ref{n}.png").mkdir()
        return f"ref{n}.png"
    if kind == "loop":
        (tmp / f"loop{n}.png").symlink_to(tmp / f"loop{n}.png")
        return f"loop{n}.png"
    return {"long": "a/" * 2100 + "x.png", "name": "n" * 300 + ".png", "zero": "/dev/zero", "real": str(KEEPER), "absent": "missing.png"}[kind]


RAW_DOCUMENTS = [
    "[" * 10_000 + "]" * 10_000,
    "title: t\nshots:\n  - id: a\n    seconds: 4\n    visual: v\n    seconds: 12\n",
    "title: t\ntitle: u\nshots: []\n",
    "seconds: " + "9" * 4400 + "\n",
    "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9)),
    "a: &a [*a]\n",
    "title: !!python/object/apply:os.system ['true']\nshots: []\n",
    "title: !!binary aGVsbG8=\nshots: [{id: a, seconds: 4, visual: v}]\n",
    "title: 2026-11-29\nshots: [{id: a, seconds: 4, visual: v}]\n",
    "title: t\nshots: [{id: a, seconds: .inf, visual: v}]\n",
    "\ufefftitle: t\nshots: [{id: a, seconds: 4, visual: v}]\n",
    "# only a comment\n",
    "",
    "title: t\x00\nshots: []\n",
    "title:\tt\nshots:\n\t- id: a\n",
    "base: &b {seconds: 4, visual: v}\ntitle: t\nshots:\n  - <<: *b\n    id: a\n",
    "- a list\n- at the top\n",
    "title: " + "long " * 30000 + "\n",
]


def _raw_document(rng: random.Random) -> str | bytes:
    roll = rng.random()
    if roll < 0.1:
        return b"title: caf\xe9\nshots: []\n"
    if roll < 0.2:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 400)))
    return rng.choice(RAW_DOCUMENTS)


def _special_file(rng: random.Random, tmp: Path, n: int) -> str:
    kind = rng.choice(["fifo", "zero", "dir", "absent", "long", "name", "loop", "huge"])
    if kind == "fifo":
        os.mkfifo(tmp / f"case{n}.yaml")
        return str(tmp / f"case{n}.yaml")
    if kind == "loop":
        (tmp / f"case{n}.yaml").symlink_to(tmp / f"case{n}.yaml")
        return str(tmp / f"case{n}.yaml")
    if kind == "huge":
        (tmp / f"case{n}.yaml").write_bytes(b"# " + b"x" * (600 * 1024))
        return str(tmp / f"case{n}.yaml")
    return {"zero": "/dev/zero", "dir": str(tmp), "absent": str(tmp / "absent.yaml"), "long": "d/" * 2100 + "s.yaml", "name": str(tmp / ("n" * 300 + ".yaml"))}[kind]


def _options(rng: random.Random, tmp: Path, n: int) -> list[str]:
    options = []
    if rng.random() < 0.4:
        options += ["--budget", rng.choice(["nan", "inf", "-inf", "-3", "1e309", "abc", "", "0", "5", "1e-320", "0x10", " 7 ", "100"])]
    if rng.random() < 0.3:
        (tmp / f"file{n}").write_text("x")
        options += ["--out", rng.choice([str(tmp / f"out{n}"), "/dev/null", str(tmp / f"file{n}"), "o/" * 2100, str(tmp / ("o" * 300)), str(tmp / "\x1b[2Jout")])]
    if rng.random() < 0.3:
        options += ["--storage", rng.choice([
            "s3://bucket-ok/films", "s3://bucket-ok/" + "p" * 300, "http://user:s3cret@host/x", "gs://b/x", "file://host/x", "",
            "s3://Bad_Bucket/x", "s3://bucket-ok/a/../b", "s3://bucket-ok/" + "a/" * 600, str(tmp / f"store{n}"),
        ])]
    return options


def make_case(rng: random.Random, tmp: Path, n: int) -> tuple[list[str], dict[str, str], str]:
    """(argv, extra env, a description for failures)."""
    roll = rng.random()
    if roll < 0.08:
        path, shown = _special_file(rng, tmp, n), "special file"
    else:
        path = str(tmp / f"case{n}.{'json' if rng.random() < 0.25 else 'yaml'}")
        if roll < 0.25:
            content = _raw_document(rng)
        else:
            board = _mutated_board(rng, tmp) if roll < 0.9 else _valid_board(rng)
            content = json.dumps(board, allow_nan=True) if path.endswith(".json") else yaml.safe_dump(board, allow_unicode=True)
        Path(path).write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
        shown = repr(content[:300])
    command = ["estimate"] if rng.random() < 0.4 else ["render", "--dry-run"]
    argv = [*command, path, *(_options(rng, tmp, n) if command[0] == "render" else [])]
    env = {"SORAFLOW_ALLOW_BEYOND_SPEC": "true"} if rng.random() < 0.3 else {}
    return argv, env, f"case {n}: soraflow {' '.join(repr(a)[:80] for a in argv)} env={env}\n  storyboard: {shown}"


def invoke(runner: CliRunner, argv: list[str], env: dict):
    """The result, this thread's CPU seconds and the wall seconds of one CLI invocation."""
    cpu, wall = time.thread_time(), time.monotonic()
    result = runner.invoke(app, argv, env=env)
    return result, time.thread_time() - cpu, time.monotonic() - wall


def check_outcome(result, cpu: float, wall: float, what: str) -> str:
    """'plan' or 'refused'; fails the test on anything else."""
    output = result.output
    assert cpu < LIMIT_CPU_SECONDS and wall < LIMIT_WALL_SECONDS, f"{what}\n  took {cpu:.2f} s of CPU, {wall:.2f} s in all"
    assert result.exception is None or isinstance(result.exception, SystemExit), f"{what}\n  raised {result.exception!r}"
    assert "Traceback" not in output and "run with --debug for the traceback" not in output, f"{what}\n{output[-2000:]}"
    assert "\x1b" not in output and "\x07" not in output, f"{what}\n  control characters reached the terminal: {output[-500:]!r}"
    if result.exit_code == 0:
        assert "total" in output, f"{what}\n{output[-1000:]}"
        return "plan"
    assert result.exit_code in (1, 2), f"{what}\n  exit {result.exit_code}\n{output[-1000:]}"
    assert "error" in output.lower() or "Invalid value" in output, f"{what}\n{output[-1000:]}"
    return "refused"


@pytest.fixture
def fuzz_env(tmp_path, monkeypatch, simulator):
    monkeypatch.setenv("SORAFLOW_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("OPENAI_BASE_URL", simulator.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", simulator.api_key)
    monkeypatch.delenv("SORAFLOW_ALLOW_BEYOND_SPEC", raising=False)
    monkeypatch.chdir(tmp_path)
    return simulator


def test_fuzzed_storyboards_and_options_end_in_a_plan_or_one_clean_error(tmp_path, fuzz_env):
    rng = random.Random(SEED)
    runner = CliRunner()
    creates = len(fuzz_env.jobs())
    outcomes: dict[str, list[tuple[list[str], dict, str]]] = {"plan": [], "refused": []}
    for n in range(CASES):
        argv, env, what = make_case(rng, tmp_path, n)
        outcomes[check_outcome(*invoke(runner, argv, env), what)].append((argv, env, what))
    # Both kinds of outcome are well represented: the generator is not trivially all-invalid.
    assert len(outcomes["plan"]) >= 30 and len(outcomes["refused"]) >= 200, {k: len(v) for k, v in outcomes.items()}

    # A handful of the refused cases again, through `render` itself: refused before any create.
    for argv, env, what in rng.sample(outcomes["refused"], 12):
        if argv[0] != "render":
            argv = ["render", *argv[1:]]
        argv = [a for a in argv if a != "--dry-run"]
        assert check_outcome(*invoke(runner, argv, env), f"(render) {what}") == "refused"
    assert len(fuzz_env.jobs()) == creates
