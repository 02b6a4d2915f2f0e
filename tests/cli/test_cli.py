"""The typer CLI: estimate, dry run, budget, and render on the embedded simulator."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import ffmpeg
import httpx
import psutil
import pytest
import yaml
from typer.testing import CliRunner

from soraflow.plan import load_plan
from soraflow.cli import app
from soraflow.ledger import Ledger

runner = CliRunner()


def test_estimate_prints_every_clip_and_total(lighthouse):
    res = runner.invoke(app, ["estimate", str(lighthouse)])
    assert res.exit_code == 0, res.output
    assert len([line for line in res.output.splitlines() if line.startswith("│") and " sora-2 " in line]) == 4  # the caption names limits
    assert "$0.40" in res.output and "$2.80" in res.output


def test_estimate_and_dry_run_count_the_limits_in_the_wall_time(tmp_path):
    """500 independent clips on the simulator (2 s each) under the default limits: 4 in flight
    and 60 creates a minute, so the rate decides (60 at once, then one a second); the caption
    says what it assumed. It said ~32 s before: every clip at once."""
    board = tmp_path / "s.yaml"
    board.write_text(yaml.safe_dump({"title": "Many", "size": "720x1280",
                                     "shots": [{"id": f"s{i:03d}", "seconds": 4, "visual": f"shot {i}"} for i in range(500)]}))  # fmt: skip
    env = {"SORAFLOW_SIMULATOR_LATENCY": "2", "SORAFLOW_STATE_DIR": str(tmp_path / "state"), "COLUMNS": "400"}
    for args in (["estimate", str(board)], ["render", str(board), "--out", str(tmp_path / "out"), "--dry-run"]):
        res = runner.invoke(app, args, env=env)
        assert res.exit_code == 0, res.output
        said = " ".join(res.output.split())
        assert "expected wall time ~7 min 54 s: 500 clip(s), at most 4 at a time and 60 creates a minute" in said, said[-800:]
        assert "each clip ~2 s (the simulator's latency, SORAFLOW_SIMULATOR_LATENCY)" in said and "start-up not counted" in said


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


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A process environment with no key, no Prefect settings and a state of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "OPENAI_", "SORAFLOW_"))}
    return env | {
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "SORAFLOW_STATE_DIR": str(tmp_path / "state"),
        "SORAFLOW_PREFECT_LOCAL_API": "",  # never a Prefect server someone runs on this machine
        "SORAFLOW_RETRY_BASE_DELAY_SECONDS": "0.2",
        **extra,
    }


def soraflow(*args: str, env: dict[str, str], timeout: float = 400) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "soraflow.cli", *args], env=env, capture_output=True, text=True, timeout=timeout)


def listening_ports(processes) -> set[int]:
    ports = set()
    for proc in processes:
        try:
            ports |= {c.laddr.port for c in proc.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}
        except psutil.NoSuchProcess:
            pass
    return ports


def embedded_simulator_jobs(proc: psutil.Process) -> list[dict]:
    """The jobs of the simulator a render embeds: it listens in the render's own process."""
    for port in listening_ports([proc]):
        try:
            answer = httpx.get(f"http://127.0.0.1:{port}/_sim/jobs", timeout=2)
        except httpx.HTTPError:
            continue
        if answer.status_code == 200:
            return answer.json()["data"]
    return []


def test_render_on_a_new_machine_stops_cleanly_on_sigterm_and_runs_again(lighthouse, tmp_path):
    """README command 1 as a fresh machine runs it (no key, no Prefect server, an empty
    PREFECT_HOME), stopped by SIGTERM while its clips are in flight, then run again.

    Real processes: Prefect reads its settings once at import; its temporary server is a child
    process that SIGTERM's default action would leave listening; the first start of that server
    (migrating a new database) once took longer than Prefect's startup timeout.
    """
    out = tmp_path / "out"
    command = [sys.executable, "-m", "soraflow.cli", "render", str(lighthouse), "--out", str(out)]
    env = cli_env(tmp_path, SORAFLOW_SIMULATOR_LATENCY="60")
    render = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    main = psutil.Process(render.pid)
    deadline = time.monotonic() + 300
    while len(jobs := embedded_simulator_jobs(main)) < 4:  # every clip created, none finished
        assert render.poll() is None, render.stdout.read()
        assert time.monotonic() < deadline, "the render did not create its clips"
        time.sleep(0.5)
    tree = [main, *main.children(recursive=True)]
    ports = listening_ports(tree)
    assert len(tree) >= 2 and len(ports) >= 2  # the embedded simulator and the temporary Prefect server

    render.send_signal(signal.SIGTERM)
    output = render.communicate(timeout=120)[0]
    assert render.returncode == 143, output
    assert "interrupted" in output and "Traceback" not in output
    for proc in tree:
        assert not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE, f"{proc.pid} {proc.name()} still runs"
    for port in ports:
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still listens"
    # Every job the provider accepted is in the ledger: a rerun never pays for it blindly.
    assert {j["id"] for j in jobs} <= Ledger(tmp_path / "state" / "ledger.sqlite").known_job_ids()

    again = soraflow("render", str(lighthouse), "--out", str(out), env=cli_env(tmp_path, SORAFLOW_SIMULATOR_LATENCY="0.5"))
    output = again.stdout + again.stderr
    assert again.returncode == 0, output
    assert "No credentials for any endpoint: this film is simulated" in output
    assert "unsigned: film.mp4 carries no Content Credentials: no C2PA signer is configured" in output  # said in one line
    assert "Failed to send telemetry" not in output and "Traceback" not in output
    assert abs(float(ffmpeg.probe(str(out / "film.mp4"))["format"]["duration"]) - 28) <= 0.2
    assert len(json.loads((out / "manifest.json").read_text())["clips"]) == 4


@pytest.mark.slow
def test_sigterm_ends_a_render_whose_status_calls_all_fail_within_10_s_and_the_rerun_pays_nothing_again(tmp_path, endpoint_proxy):
    """Every status call answered 502: the SDK retries each with backoff (tens of seconds), the
    render's own poll keeps trying until its deadline. SIGTERM must still end the whole process
    tree (the render, its temporary Prefect server) within 10 s, with every job in the ledger,
    and a rerun must create nothing."""
    from soraflow.models import load_catalog
    from soraflow.simulator import Simulator, SimulatorConfig, simulated_models

    from ..fixtures.endpoints import bearer

    models = 'endpoints:\n  gw: {{base_url: "{url}", key_env: GW_KEY}}\nmodels:\n  gw-video: {{endpoint: gw, seconds: [4], sizes: {{720x1280: 0.1}}}}\n'
    config = SimulatorConfig(latency=0.5, cache_dir=str(tmp_path / "renders"), models=simulated_models(load_catalog(text=models.format(url="http://x/v1"))))
    with Simulator(config) as sim:
        gw = endpoint_proxy(sim, auth=bearer("gw-key-sigterm-0123"), retrieve_status=502)
        (tmp_path / "models.yaml").write_text(models.format(url=gw.base_url))
        board = tmp_path / "board.yaml"
        board.write_text(yaml.safe_dump({"title": "Term", "size": "720x1280", "model": "gw-video",
                                         "shots": [{"id": f"s{i}", "seconds": 4, "visual": f"a lighthouse, shot {i}"} for i in range(4)]}))  # fmt: skip
        env = cli_env(tmp_path, SORAFLOW_MODELS=str(tmp_path / "models.yaml"), GW_KEY="gw-key-sigterm-0123")
        command = [sys.executable, "-m", "soraflow.cli", "render", str(board), "--out", str(tmp_path / "out")]
        render = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        main = psutil.Process(render.pid)
        deadline = time.monotonic() + 300
        while len(sim.jobs()) < 4 or len([s for s in gw.seen if s.method == "GET" and s.path.count("/") == 2]) < 8:
            assert render.poll() is None, render.stdout.read()
            assert time.monotonic() < deadline, "the render did not create its clips"
            time.sleep(0.2)
        tree = [main, *main.children(recursive=True)]
        assert len(tree) >= 2  # the render and its temporary Prefect server

        render.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        gone, alive = psutil.wait_procs(tree, timeout=10)
        took = time.monotonic() - sent
        output = render.communicate(timeout=30)[0]
        assert not alive, f"{[p.pid for p in alive]} still run {took:.1f} s after SIGTERM:\n{output[-3000:]}"
        # psutil's wait reaped the render (its child): its exit code is on the psutil process, not on the Popen
        assert main.returncode == 143, output
        assert "interrupted" in output and "Traceback" not in output, output
        jobs = {j["id"] for j in sim.jobs()}
        assert len(jobs) == 4 and jobs <= Ledger(tmp_path / "state" / "ledger.sqlite").known_job_ids()

        gw.retrieve_status = None
        again = soraflow("render", str(board), "--out", str(tmp_path / "out"), env=env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert {j["id"] for j in sim.jobs()} == jobs, "the rerun created again"
        assert "billed this run $0.00" in again.stdout


@pytest.fixture
def session_api(prefect_server) -> str:
    """The session's Prefect server, for CLI processes (no temporary server of their own)."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


@pytest.mark.slow
def test_a_150_shot_render_says_queued_clips_once_with_at_most_10_warnings(session_api, tmp_path):
    """150 clips under the default limit of 4 in flight: 146 wait for their turn. That is the
    limits working: the terminal shows one progress view (one line for the whole film, its
    queued clips counted there), and the run's logs hold at most 10 lines at WARNING or above
    (it was about 300: "clip sNNN waits for a slot", each clip every 30 s)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterStartTime, LogFilter, LogFilterFlowRunId, LogFilterLevel
    from datetime import datetime, timezone

    models = tmp_path / "models.yaml"  # the default 4 in flight; creates per minute out of the way: this is about waits, not rates
    models.write_text(yaml.safe_dump({"models": {"sora-2": {"requests_per_minute": 6000}}}))
    board = tmp_path / "board.yaml"
    board.write_text(yaml.safe_dump({"title": "Many", "size": "720x1280",
                                     "shots": [{"id": f"s{i:03d}", "seconds": 4, "visual": f"a harbour light, shot {i}"} for i in range(150)]}))  # fmt: skip
    started = datetime.now(timezone.utc)
    env = cli_env(tmp_path, PREFECT_API_URL=session_api, SORAFLOW_MODELS=str(models), SORAFLOW_REQUESTS_PER_MINUTE="6000",
                  SORAFLOW_SIMULATOR_LATENCY="0.3", COLUMNS="150")  # fmt: skip
    done = soraflow("render", str(board), "--out", str(tmp_path / "out"), env=env, timeout=900)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert len(json.loads((tmp_path / "out" / "manifest.json").read_text())["clips"]) == 150

    warnings = [line for line in output.splitlines() if "| WARNING |" in line or "| ERROR |" in line or line.startswith("warning:")]
    assert len(warnings) <= 10, "\n".join(warnings[:20])
    assert "waits for a slot" not in output
    views = [line for line in done.stderr.splitlines() if line.startswith("all clips")]
    assert len(views) == 1 and "100%" in views[0] and "150 stored" in views[0], done.stderr[-3000:]
    assert not [line for line in done.stderr.splitlines() if line.startswith("s0") and "━" in line]  # no bar per clip

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["render-storyboard"])),
            flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=started)),
        )
        [run] = [r for r in runs if r.parameters["request"]["storyboard_path"] == str(board)]
        logged = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id]), level=LogFilterLevel(ge_=30)))
        every, page = [], True
        while page:  # the API answers 200 at a time
            page = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])), offset=len(every))
            every += page
    assert len(logged) <= 10, [log.message for log in logged]
    assert len(every) > 150  # the run's logs were read whole
    queued = [log.message for log in every if "queued for their turn" in log.message]
    assert len(queued) == 1 and queued[0].startswith("146 clip(s) queued for their turn under the limits; expected wall time"), queued


def test_a_shot_refused_by_moderation_is_named_once_with_the_providers_code(sim_env, session_api, tmp_path, monkeypatch):
    tag = uuid.uuid4().hex[:8]
    monkeypatch.setattr(sim_env.config, "moderation_terms", [f"forbidden cargo {tag}"])  # only this test's prompt
    sb = tmp_path / "harbour.yaml"
    sb.write_text(yaml.safe_dump({"title": f"Harbour {tag}", "shots": [
        {"id": "harbour", "seconds": 4, "visual": f"A quiet harbour at dawn {tag}"},
        {"id": "smuggler", "seconds": 4, "visual": f"A smuggler unloading forbidden cargo {tag}"},
    ]}))
    # No PREFECT_API_URL: a Prefect server already running where the CLI looks (here the
    # session's) is used, not a temporary one started for the command.
    env = cli_env(tmp_path, SORAFLOW_PREFECT_LOCAL_API=session_api, OPENAI_BASE_URL=sim_env.base_url, OPENAI_API_KEY=sim_env.api_key)
    done = soraflow("render", str(sb), "--out", str(tmp_path / "out"), env=env)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "shot 'smuggler' part 1: Your request was blocked by our moderation system. [moderation_blocked]" in output
    assert output.count("shot 'smuggler'") == 1 and "shot 'harbour'" not in output
    assert "Traceback" not in output and "Task run" not in output
    assert f"using the Prefect server running at {session_api}" in output and "temporary Prefect server" not in output


def test_a_retired_model_is_refused_in_the_preflight_without_a_traceback(session_api, tmp_path, lighthouse):
    from soraflow.simulator import Simulator, SimulatorConfig

    with Simulator(SimulatorConfig(latency=0.5, shutdown=True)) as retired:
        env = cli_env(tmp_path, PREFECT_API_URL=session_api, OPENAI_BASE_URL=retired.base_url, OPENAI_API_KEY=retired.api_key)
        done = soraflow("render", str(lighthouse), "--out", str(tmp_path / "out"), env=env)
        assert retired.jobs() == []
    assert done.returncode == 2, done.stdout + done.stderr  # refused before anything was paid, like a budget
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower() or line.startswith("  - ")]
    assert errors == [
        "error: refused before anything was paid (1 problem(s)); nothing was created:",
        f"  - endpoint openai: model sora-2 was retired on 2026-09-24 and is no longer served at openai ({retired.base_url}) [model_retired]",
    ]
    assert "Traceback" not in done.stderr and "Flow run" not in done.stderr


def test_an_unchanged_rerun_is_answered_without_prefect_or_the_provider(sim_env, prefect_server, lighthouse, tmp_path):
    from soraflow import archive, assembly
    from soraflow.flows.render import RenderRequest, render_storyboard
    from soraflow.settings import Settings

    out = tmp_path / "out"
    assert render_storyboard(RenderRequest(storyboard_path=str(lighthouse), out_dir=str(out)), return_state=True).is_completed()
    before = sim_env.stats()["requests_total"]
    res = runner.invoke(app, ["render", str(lighthouse), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "up to date" in res.output and f"film: {out / 'film.mp4'}" in res.output and "unsigned: " in res.output
    assert sim_env.stats()["requests_total"] == before

    # Anything that would change the outputs sends the render through the flow again.
    settings = Settings()
    plan = load_plan(str(lighthouse), None, settings=settings)
    store = archive.open_for(out.as_uri(), settings)
    check = dict(transition_seconds=settings.transition_seconds, burn_subtitles=settings.burn_subtitles)
    assert assembly.up_to_date(plan, out, store, **check) is not None
    assert assembly.up_to_date(plan, out, store, **{**check, "transition_seconds": 1.0}) is None
    assert assembly.up_to_date(plan, out, store, **check, signer_identity="a certificate's fingerprint") is None  # now signed: signed again
    assert assembly.up_to_date(plan, out, archive.open_for((tmp_path / "elsewhere").as_uri(), settings), **check) is None
    next(out.glob("the-lighthouse-keeper/clips/keeper-p2-*.mp4")).unlink()  # a stored clip is gone
    assert assembly.up_to_date(plan, out, store, **check) is None


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


GATEWAY_MODELS = """
endpoints:
  gateway: {base_url: http://127.0.0.1:9/v1, key_env: GATEWAY_KEY, models_route: false}
models:
  gateway-veo: {endpoint: gateway, model: veo-3.1, seconds: [4, 6, 8], sizes: {1280x720: 0.45}}
"""
# SORAFLOW_SIMULATE is listed so that CliRunner restores it: --simulate sets it for the flow run.
NO_CREDENTIALS = {
    "OPENAI_API_KEY": None, "GATEWAY_KEY": None, "GOOGLE_API_KEY": None, "GOOGLE_CLOUD_PROJECT": None, "SORAFLOW_SIMULATE": None,
}


@pytest.fixture
def wide(monkeypatch):
    """Tables as wide as they need: one line per profile, whatever terminal runs the tests."""
    from rich.console import Console

    import soraflow.cli.models

    monkeypatch.setattr(soraflow.cli.models, "out", Console(width=250))


def test_models_lists_every_profile_with_its_endpoint_and_prices(tmp_path, wide):
    (tmp_path / "models.yaml").write_text(GATEWAY_MODELS)
    env = {**NO_CREDENTIALS, "SORAFLOW_MODELS": str(tmp_path / "models.yaml")}
    res = runner.invoke(app, ["models"], env=env)
    assert res.exit_code == 0, res.output
    lines = {line.split("│")[1].strip(): line for line in res.output.splitlines() if line.count("│") > 5}
    assert {"sora-2", "sora-2-pro", "veo-3.1-generate-001", "veo-3.1-fast-generate-001", "gateway-veo"} <= set(lines)
    assert "gateway (simulated)" in lines["gateway-veo"] and "4, 6, 8" in lines["gateway-veo"] and "1280x720 $0.45/s" in lines["gateway-veo"]
    assert "2026-09-24" in lines["sora-2"] and "vertex (simulated)" in lines["veo-3.1-generate-001"]
    assert "every endpoint is served by the embedded simulator: no endpoint has credentials here" in res.output

    env["GATEWAY_KEY"] = "gk"
    res = runner.invoke(app, ["models"], env=env)
    lines = {line.split("│")[1].strip(): line for line in res.output.splitlines() if line.count("│") > 5}
    assert "gateway (http://127.0.0.1:9/v1)" in lines["gateway-veo"] and "openai (not configured)" in lines["sora-2"]
    assert "endpoint openai is not configured here: set OPENAI_API_KEY" in res.output


def test_models_check_asks_each_endpoint(tmp_path, wide):
    (tmp_path / "models.yaml").write_text(GATEWAY_MODELS)
    env = {**NO_CREDENTIALS, "SORAFLOW_MODELS": str(tmp_path / "models.yaml"), "SORAFLOW_STATE_DIR": str(tmp_path / "state")}
    res = runner.invoke(app, ["models", "--check"], env=env)
    assert res.exit_code == 0, res.output
    offered = {line.split("│")[1].strip(): line.split("│")[-2].strip() for line in res.output.splitlines() if line.count("│") > 6}
    assert offered["sora-2"] == "yes" and offered["veo-3.1-fast-generate-001"] == "yes"
    assert offered["gateway-veo"] == "yes"  # the simulator serves what the profile asks for


def test_a_models_file_with_a_mistake_is_one_message_naming_the_field(lighthouse, tmp_path):
    (tmp_path / "models.yaml").write_text("models:\n  gateway-veo: {like: sora-2, seconds: [4, six]}\n")
    res = runner.invoke(app, ["estimate", str(lighthouse)], env={"SORAFLOW_MODELS": str(tmp_path / "models.yaml")})
    assert res.exit_code == 2
    assert "models.gateway-veo.seconds[1]: 'six' is not allowed" in res.output and "Traceback" not in res.output


def test_a_storyboard_on_an_endpoint_without_its_key_is_refused_with_the_variable_to_set(tmp_path):
    (tmp_path / "models.yaml").write_text(GATEWAY_MODELS)
    (tmp_path / "s.yaml").write_text("title: t\nshots:\n  - {id: a, seconds: 6, visual: v, model: gateway-veo}\n")
    env = {**NO_CREDENTIALS, "SORAFLOW_MODELS": str(tmp_path / "models.yaml"), "OPENAI_API_KEY": "sk-x"}
    res = runner.invoke(app, ["estimate", str(tmp_path / "s.yaml")], env=env)
    assert res.exit_code == 2
    assert "endpoint 'gateway' has no credentials here: set GATEWAY_KEY (needed by shot 'a')" in res.output
    res = runner.invoke(app, ["estimate", str(tmp_path / "s.yaml"), "--simulate"], env=env)
    assert res.exit_code == 0 and "$2.70" in res.output


def test_estimate_of_the_veo_example_equals_the_profiles_prices_to_the_cent():
    from decimal import Decimal

    import yaml

    from soraflow.models import builtin_catalog
    from tests.conftest import EXAMPLES

    path = EXAMPLES / "veo" / "storyboard.yaml"
    board = yaml.safe_load(path.read_text())
    catalog = builtin_catalog()
    prices = [catalog.profile(s.get("model", board["model"])).price(board["size"], s["seconds"]) for s in board["shots"]]
    res = runner.invoke(app, ["estimate", str(path)], env={"GOOGLE_API_KEY": "", "GOOGLE_CLOUD_PROJECT": "", "OPENAI_API_KEY": ""},
                        terminal_width=200)
    assert res.exit_code == 0, res.output
    rows = [line for line in res.output.splitlines() if "vertex" in line and line.startswith("│")]  # the caption names its limits
    assert [Decimal(r.split("$")[-1].split()[0]) for r in rows] == prices
    total = next(line for line in res.output.splitlines() if "total" in line)
    assert Decimal(total.split("$")[-1].split()[0]) == sum(prices) == Decimal("3.00")


def test_limits_shows_each_cap_and_who_holds_its_slots(tmp_path, monkeypatch):
    from soraflow.ledger import Ledger, Limit, Slots

    monkeypatch.setenv("SORAFLOW_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SORAFLOW_MAX_CONCURRENT_SUBMISSIONS", "3")
    res = runner.invoke(app, ["limits"])
    assert res.exit_code == 0, res.output
    assert "'all' is not in the ledger yet; the next render creates it with 3 in flight" in " ".join(res.output.split())

    slots = Slots(Ledger(tmp_path / "state" / "ledger.sqlite"))
    slots.configure([Limit("all", 4, 60, "SORAFLOW_MAX_CONCURRENT_SUBMISSIONS and SORAFLOW_REQUESTS_PER_MINUTE")])
    held = slots.acquire([Limit("all", 4)], clip_key="k", holder="run brave-fox clip dawn")
    try:
        res = runner.invoke(app, ["limits"])
    finally:
        slots.release(held)
    assert res.exit_code == 0, res.output
    assert "1 of 4" in res.output and "run brave-fox" in res.output and str(os.getpid()) in res.output  # (the table folds)
    assert "size 'all' to 3 in flight and 60 creates per minute: the next render applies that" in " ".join(res.output.split())


def test_estimate_at_watched_prices_says_which_and_from_when(lighthouse, tmp_path, monkeypatch):
    from soraflow.ledger import WatchedPrices
    from soraflow.models import simulator_identity
    from soraflow.settings import Settings

    monkeypatch.setenv("SORAFLOW_STATE_DIR", str(tmp_path / "state"))
    res = runner.invoke(app, ["estimate", str(lighthouse), "--prices", "watched"])
    assert res.exit_code == 0, res.output
    assert "$2.80" in res.output and "the model watch has priced none of these" in res.output

    # what two watches of the simulated Videos endpoint left in the ledger
    from datetime import datetime, timezone

    first, second = (datetime(2026, 11, day, 12, tzinfo=timezone.utc).timestamp() for day in (28, 29))
    ledger = Ledger.from_settings(Settings())
    watched = WatchedPrices(ledger)
    source = "https://raw.githubusercontent.com/BerriAI/litellm/main/model_prices_and_context_window.json"
    watched.record(simulator_identity("openai-videos"), {"sora-2": {"1280x720": "0.15", "720x1280": "0.10"}}, source=source, now=first)
    watched.record(simulator_identity("openai-videos"), {"sora-2": {"1280x720": "0.15", "720x1280": "0.12"}}, source=source, now=second)
    ledger.close()

    res = runner.invoke(app, ["estimate", str(lighthouse), "--prices", "watched"])
    assert res.exit_code == 0, res.output
    assert "$0.60" in res.output and "$4.20" in res.output  # 28 s at $0.15 instead of $0.10
    assert "prices: watched by the model watch for 1 of 1 model and size(s) used" in res.output
    assert (f"sora-2 1280x720: $0.15/s watched from {source} (this price since 2026-11-28 12:00 UTC, "
            "last watched 2026-11-29 12:00 UTC)") in res.output

    res = runner.invoke(app, ["estimate", str(lighthouse)])  # the profiles' prices by default
    assert res.exit_code == 0 and "$2.80" in res.output and "prices: the model profiles' (soraflow/models/builtin.yaml)" in res.output
