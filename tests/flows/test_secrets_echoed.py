"""No key leaves the process, even when an endpoint echoes it back (issue 32).

Endpoints that quote the credential they received (raw, URL-encoded and base64) in every error,
for every kind of credential soraflow takes: a gateway's ``key_env``, Azure's ``api-key``, a
Microsoft Entra client secret and the token azure-identity gets with it (from an authority on
loopback over TLS), a Google API key, a Vertex ADC token google-auth refreshes (from a service
account's file whose token endpoint is the fake), a Prefect Secret block, fal's ``FAL_KEY`` (sent
as fal-client sends it, to a fal entry whose hosts the fake serves over TLS), and a base URL's
userinfo. Two fakes, two real ``soraflow --debug render`` processes at once, with Prefect and SDK
debug logging on:

- ``refuse``: 401 everywhere, token endpoints included: every endpoint is refused in the
  preflight (fal's model metadata refused is only a warning there), each refusal quoting a
  credential;
- ``flaky``: tokens issued, models listed, each create answered 429 (``retry-after: 0``) and then
  500, everything else 401: every clip is refused once, then left in doubt (the job list that
  could prove otherwise, or fal's request history, answers 401), which writes every ledger
  column that holds text; one more endpoint answers its create with invalid JSON holding a body
  canary.

Then ``jobs``, ``jobs log``, ``models --check`` and ``watch`` against each. Every key is searched
for, raw, URL-encoded and base64, in stdout and stderr, OUT, the state directories (ledger,
results, decoded with Prefect's serializers), the processes' whole PREFECT_HOME and the Prefect
server's database (dumped): 0 hits. The positive control: the endpoints put a control word beside
each key, and the search finds that word in each of those places, so the keys' absence is not
the search missing the text.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import yaml

from tests.fixtures.echo import BODY_CANARY, ECHO_CONTROL, EchoEndpoint, service_account_file
from tests.flows.processes import SOR

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

KEYS = {
    "gateway key (key_env)": "sk-gw+echo/4c1d9e7a",
    "Azure api-key": "az+api/key-8e2f6b1c",
    "Entra client secret": "ec~Q8+entra/secret-3a9d",
    "Entra token": "eyJ0.entra+token/7f2c41",
    "Google API key": "AIza+echo/google-5b8e",
    "Vertex ADC token": "ya29.adc+token/1e6f03",
    "Prefect Secret block": "sk-vault+echo/6a4f19",
    "fal key (FAL_KEY)": "fal-echo+key-id:9c2e/secret-47d1",
    "base URL userinfo": "veo-userinfo-pass-5e1b",
    "base URL userinfo, as HTTP basic auth sends it": "echo:veo-userinfo-pass-5e1b",
}
# Planted after the runs, in each place searched, in a form a byte search cannot see (base64
# inside a pickle, URL-encoded in the database): the search must find it there.
PLANTED = "planted-canary-key+3c9e/71"
SECRET_BLOCK = "echo-vault-key"
SHOTS = ("gateway", "azure", "entra", "vault", "veo-key", "veo-adc", "fal", "garbled")
VIDEO_MODELS = {"gateway": ["echo-video"], "azure": ["echo-deployment"], "entra": ["echo-deployment"], "vault": ["echo-video"],
                "garbled": ["echo-video"], "veo-key": ["veo-3.1-fast-generate-001"], "veo-adc": ["veo-3.1-fast-generate-001"],
                "fal": ["fal-ai/veo3.1"]}


def forms(value: str) -> set[str]:
    """A value as it may appear in text: raw, URL-encoded, base64 (standard, URL-safe, unpadded)."""
    raw = value.encode()
    out = {value, quote(value, safe=""), quote_plus(value, safe="")}
    for encoded in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
        out |= {encoded, encoded.rstrip("=")}
    return out


FORMS = {name: forms(key) for name, key in KEYS.items()}


def key_hits(text: str, where: str) -> list[str]:
    return [f"{name} ({form!r}) in {where}" for name, fs in FORMS.items() for form in fs if form in text]


def models_file(folder: Path, echo: EchoEndpoint) -> Path:
    url = echo.url
    data = {
        "endpoints": {
            "gateway": {"base_url": f"{url}/gateway/v1", "key_env": "ECHO_GATEWAY_KEY"},
            "azure": {"base_url": f"{url}/azure/openai/v1", "auth": "api-key", "key_env": "ECHO_AZURE_KEY"},
            "entra": {"base_url": f"{url}/entra/openai/v1", "auth": "entra-id"},
            "vault": {"base_url": f"{url}/vault/v1", "key_secret": SECRET_BLOCK},
            "garbled": {"base_url": f"{url}/garbled/v1", "key_env": "ECHO_GATEWAY_KEY"},
            # its URL comes from a variable, with userinfo in it
            "veo-key": {"dialect": "google-genai", "base_url_env": "ECHO_VEO_URL", "base_url": f"{url}/veo-key",
                        "auth": "api-key", "key_env": "ECHO_GOOGLE_KEY"},
            "veo-adc": {"dialect": "google-genai", "base_url": f"{url}/veo-adc", "auth": "adc", "project": "echo-project",
                        "location": "us-central1"},
            # fal's own entry (key_env FAL_KEY), its hosts served by the fake over TLS
            "fal": {"base_url": echo.fal_url, "ca_file": str(echo.ca_file)},
        },
        "models": {
            f"echo-{name}": {"endpoint": name, "model": VIDEO_MODELS[name][0], "seconds": [4], "sizes": {"1280x720": 0.1}}
            for name in SHOTS if name != "fal"
        } | {"echo-fal": {"like": "veo-3.1-fal"}},  # a fal profile takes its arguments table
    }
    path = folder / f"models-{echo.mode}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def storyboard(folder: Path, mode: str) -> Path:
    shots = [{"id": name.replace("-", ""), "seconds": 4, "model": f"echo-{name}", "visual": f"{mode} shot at {name}"} for name in SHOTS]
    path = folder / f"board-{mode}.yaml"
    path.write_text(yaml.safe_dump({"title": f"Echo {mode}", "size": "1280x720", "shots": shots}))
    return path


def run(args: list[str], env: dict, timeout: float = 300) -> tuple[int, str, str]:
    proc = subprocess.Popen([*SOR, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        pytest.fail(f"soraflow {' '.join(args)} did not finish:\n{stdout[-2000:]}\n{stderr[-3000:]}")
    return proc.returncode, stdout, stderr


@pytest.fixture(scope="module")
def echoed(tmp_path_factory):
    """Both renders, then jobs, jobs log, models --check and watch against each fake."""
    from prefect.blocks.system import Secret
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_DATABASE_CONNECTION_URL

    tmp = tmp_path_factory.mktemp("echoed")
    secrets_dir = tmp_path_factory.mktemp("echo-credentials")  # the ADC files hold keys: never searched
    Secret(value=KEYS["Prefect Secret block"]).save(SECRET_BLOCK, overwrite=True)
    fakes = {}
    for mode in ("refuse", "flaky"):
        (secrets_dir / mode).mkdir()
        fakes[mode] = EchoEndpoint(mode, secrets_dir / mode, VIDEO_MODELS, entra_token=KEYS["Entra token"], google_token=KEYS["Vertex ADC token"])
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPENAI_", "GOOGLE_", "GEMINI_", "AZURE_", "FAL_", "PREFECT_", "SORAFLOW_"))}
    envs = {}
    for mode, echo in fakes.items():
        models = models_file(tmp, echo)
        veo_url = echo.url.replace("http://", f"http://echo:{KEYS['base URL userinfo']}@") + "/veo-key"
        envs[mode] = {
            **clean,
            "PREFECT_API_URL": PREFECT_API_URL.value(),
            "PREFECT_HOME": str(tmp / "prefect-home"),
            "PREFECT_LOGGING_LEVEL": "DEBUG",
            "PREFECT_LOGGING_ROOT_LEVEL": "DEBUG",  # every SDK's debug log too
            "SORAFLOW_STATE_DIR": str(tmp / f"state-{mode}"),
            "SORAFLOW_MODELS": str(models),
            "SORAFLOW_TRANSIENT_RETRIES": "1",
            "SORAFLOW_RETRY_BASE_DELAY_SECONDS": "0.1",
            "SORAFLOW_REQUEST_TIMEOUT_SECONDS": "20",
            "ECHO_GATEWAY_KEY": KEYS["gateway key (key_env)"],
            "ECHO_AZURE_KEY": KEYS["Azure api-key"],
            "ECHO_GOOGLE_KEY": KEYS["Google API key"],
            "FAL_KEY": KEYS["fal key (FAL_KEY)"],
            "ECHO_VEO_URL": veo_url,
            "AZURE_AUTHORITY_HOST": echo.authority_host,
            "AZURE_TENANT_ID": "adfs",
            "AZURE_CLIENT_ID": "echo-client",
            "AZURE_CLIENT_SECRET": KEYS["Entra client secret"],
            "REQUESTS_CA_BUNDLE": str(echo.ca_file),
            "GOOGLE_APPLICATION_CREDENTIALS": str(service_account_file(secrets_dir / mode, echo)),
        }
    outputs: dict[str, tuple[int, str, str]] = {}
    try:
        renders = {
            mode: subprocess.Popen(
                [*SOR, "--debug", "render", str(storyboard(tmp, mode)), "--out", str(tmp / "out" / mode)],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            for mode, env in envs.items()
        }
        for mode, proc in renders.items():
            try:
                stdout, stderr = proc.communicate(timeout=420)
            except subprocess.TimeoutExpired:
                proc.kill()
                stdout, stderr = proc.communicate()
                pytest.fail(f"render {mode} did not finish:\n{stdout[-2000:]}\n{stderr[-3000:]}")
            outputs[f"render {mode}"] = (proc.returncode, stdout, stderr)

        def commands(mode: str) -> None:
            for args in (["jobs"], ["jobs", "log"], ["--debug", "models", "--check"], ["watch"]):
                outputs[f"{' '.join(args)} {mode}"] = run(args, envs[mode])

        threads = [threading.Thread(target=commands, args=(mode,)) for mode in envs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for echo in fakes.values():
            echo.close()
    logs = tmp_path_factory.mktemp("echoed-logs")  # what each command printed, to read when a test fails
    for name, (code, stdout, stderr) in outputs.items():
        (logs / f"{name.replace(' ', '_')}.txt").write_text(f"exit {code}\n--- stdout\n{stdout}\n--- stderr\n{stderr}")
    database = Path(PREFECT_SERVER_DATABASE_CONNECTION_URL.value().split(":///", 1)[1])
    _wait_for_events(database, expected_runs=4)  # two renders, two watches
    _plant(tmp)
    yield {"tmp": tmp, "outputs": outputs, "fakes": fakes, "database": database}


def _plant(tmp: Path) -> None:
    """The planted canary in every place searched but the processes' output (which the endpoints'
    control word covers), each in a form only the decoding search sees."""
    from prefect.results import ResultRecord, ResultRecordMetadata
    from prefect.serializers import PickleSerializer
    from prefect.variables import Variable

    from soraflow.errors import UnexpectedError

    pickles = PickleSerializer(picklelib="cloudpickle")
    error = UnexpectedError(f"planted: {PLANTED}")
    (tmp / "out" / "flaky" / "planted.txt").write_text(f"basic {base64.b64encode(PLANTED.encode()).decode()}")
    with sqlite3.connect(tmp / "state-refuse" / "planted.sqlite") as db:
        db.execute("CREATE TABLE t (v TEXT)")
        db.execute("INSERT INTO t VALUES (?)", (quote(PLANTED, safe=""),))
    record = ResultRecord(metadata=ResultRecordMetadata(serializer=pickles, storage_key="planted"), result=error)
    (tmp / "state-flaky" / "results" / "planted-record").write_bytes(record.serialize())
    (tmp / "prefect-home" / "storage" / "planted-flow-failure").write_bytes(pickles.dumps(error))
    Variable.set("echo-planted", quote_plus(PLANTED), overwrite=True)


def _wait_for_events(database: Path, expected_runs: int, timeout: float = 60) -> None:
    """The server writes events a moment after they happen: wait until the last flow runs'
    terminal events are in its database."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
            ended = db.execute(
                "SELECT COUNT(*) FROM (SELECT resource_id FROM events WHERE event LIKE 'prefect.flow-run.%' AND "
                "(event LIKE '%.Failed' OR event LIKE '%.Completed') ORDER BY occurred DESC LIMIT ?)", (expected_runs,)
            ).fetchone()[0]
        if ended >= expected_runs:
            time.sleep(2)  # and the logs and events written beside them
            return
        time.sleep(1)


# --- reading what the runs left -----------------------------------------------------------------


def decoded_results(root: Path) -> list[tuple[str, str]]:
    """Every Prefect result under ``root``, loaded with Prefect's own serializers: result records
    (a task's, with their metadata), and a flow run's failure as Prefect keeps it in its local
    storage (base64 cloudpickle). Base64 hides a key from a byte search; decoded, it shows."""
    from prefect.results import ResultRecord
    from prefect.serializers import PickleSerializer

    pickles = PickleSerializer(picklelib="cloudpickle")
    out = []
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        try:
            record = ResultRecord.deserialize(data)
            value, metadata = record.result, record.metadata.model_dump_json()
        except Exception:  # noqa: BLE001 - not a result record
            try:
                value, metadata = pickles.loads(data), ""
            except Exception:  # noqa: BLE001 - not a pickled result either: read as bytes elsewhere
                continue
        text = value.model_dump_json() if hasattr(value, "model_dump_json") else f"{value!r} {value} {getattr(value, '__dict__', '')}"
        out.append((str(path), f"{text} {metadata}"))
    return out


def texts_under(root: Path) -> list[tuple[str, str]]:
    """Every file's bytes as text, SQLite files dumped, Prefect results decoded."""
    out = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            out.append((str(path), path.read_bytes().decode("utf-8", "replace")))
            if path.suffix in (".sqlite", ".db"):
                out.append((f"{path} (dumped)", sqlite_dump(path)))
    return out + [(f"decoded result {where}", text) for where, text in decoded_results(root)]


def sqlite_dump(path: Path) -> str:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return "\n".join(db.iterdump())


def places(echoed) -> dict[str, list[tuple[str, str]]]:
    tmp = echoed["tmp"]
    return {
        "stdout and stderr": [(f"{name} {stream}", text) for name, (_, out, err) in echoed["outputs"].items()
                              for stream, text in (("stdout", out), ("stderr", err))],
        "OUT": texts_under(tmp / "out"),
        "state (ledger, results)": texts_under(tmp / "state-refuse") + texts_under(tmp / "state-flaky"),
        "PREFECT_HOME": texts_under(tmp / "prefect-home"),
        "Prefect server database": [(str(echoed["database"]), sqlite_dump(echoed["database"]))],
    }


# --- the tests ------------------------------------------------------------------------------------


def test_the_runs_met_every_credential_and_failed_as_the_endpoints_made_them(echoed):
    outputs, fakes = echoed["outputs"], echoed["fakes"]
    assert outputs["render refuse"][0] != 0 and "refused before anything was paid" in outputs["render refuse"][2]
    assert outputs["render flaky"][0] != 0 and "8 of 8 clips failed" in outputs["render flaky"][2], outputs["render flaky"][2][-3000:]
    # Each credential was sent, to its own endpoint only (the positive side of the search below).
    sent = {(r.endpoint, value) for echo in fakes.values() for r in echo.received for value in r.credentials.values()}
    assert ("gateway", f"Bearer {KEYS['gateway key (key_env)']}") in sent
    assert ("azure", KEYS["Azure api-key"]) in sent
    assert ("entra-token", KEYS["Entra client secret"]) in sent and ("entra", f"Bearer {KEYS['Entra token']}") in sent
    assert ("veo-key", KEYS["Google API key"]) in sent
    assert ("veo-adc", f"Bearer {KEYS['Vertex ADC token']}") in sent
    assert ("vault", f"Bearer {KEYS['Prefect Secret block']}") in sent
    assert ("fal", f"Key {KEYS['fal key (FAL_KEY)']}") in sent
    for endpoint, value in sent:
        owner = {"gateway": "gateway key (key_env)", "garbled": "gateway key (key_env)", "azure": "Azure api-key",
                 "vault": "Prefect Secret block", "veo-key": "Google API key",
                 "fal": "fal key (FAL_KEY)"}.get(endpoint)
        if owner:
            assert KEYS[owner] in value or value.startswith("Basic "), (endpoint, value)
    # every clip of the flaky run was refused once (429), then left in doubt (500, a list that answers 401)
    ledger = sqlite_dump(echoed["tmp"] / "state-flaky" / "ledger.sqlite")
    assert ledger.count("'in_doubt'") >= 6 and ECHO_CONTROL in ledger


def test_no_echoed_key_reaches_any_output(echoed):
    found, controls, planted = [], {}, {}
    for place, texts in places(echoed).items():
        controls[place] = sum(ECHO_CONTROL in text for _, text in texts)
        planted[place] = sum(form in text for _, text in texts for form in forms(PLANTED))
        for where, text in texts:
            found += key_hits(text, where)
    assert found == [], "\n".join(found[:40])
    # The positive controls: what the endpoints said reached the places it can reach (a failed
    # render writes nothing of it into OUT), and the planted canary is found in each place.
    assert all(controls[place] for place in controls if place != "OUT"), controls
    assert all(planted[place] for place in planted if place != "stdout and stderr"), planted


def test_an_invalid_json_answer_leaves_no_response_body_in_result_storage(echoed):
    tmp = echoed["tmp"]
    stored = decoded_results(tmp / "state-flaky" / "results")
    garbled = [text for _, text in stored if "JSONDecodeError" in text]
    assert garbled, "the garbled endpoint's failure is in result storage (as the type name and message only)"
    assert all("UnexpectedError" in text for text in garbled)
    everywhere = [where for texts in places(echoed).values() for where, text in texts if BODY_CANARY in text]
    assert everywhere == [], everywhere
