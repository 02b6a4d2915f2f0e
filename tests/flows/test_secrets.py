"""No credential reaches any output: canaries for the OpenAI key, the AWS access key id, secret
and session token, a URL's userinfo, the fal key, a webhook secret, and the film's C2PA signing
key and its password, across five real `soraflow render` processes at once and a webhook receiver:

- a normal render (the OpenAI key canary is the bearer key the simulator accepts), whose
  endpoint declares webhooks: the simulator signs its deliveries with the webhook secret canary
  and `soraflow webhooks serve` (a process of its own, emitting Prefect events) verifies them;
- an S3 render (moto over HTTP, with the AWS canaries as temporary credentials), its film signed
  with an encrypted development key and the password canary;
- a fault storm (429s, 500s, resets and moderation: some shots fail, others retry);
- a failing render (the base URL carries userinfo; the model is reported retired there);
- a fal render (FAL_KEY, sent as fal-client sends it, to the simulator's fal port).

Then every place a secret could land is read, decoded where it is encoded: stdout and stderr,
every file under the output and state directories (the ledger included), Prefect's persisted
results loaded with Prefect's own serializers, and the Prefect server's flow runs, flow and task
run states, logs, artifacts and events. A positive control proves the reading finds a canary
that is there, so the search itself cannot silently miss.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from tests.flows.processes import SOR, ReceiverProcess, SimProcess, free_port

pytestmark = pytest.mark.usefixtures("prefect_server")

CANARIES = {
    "OpenAI key": "sk-canary-openai-5b2f8e1d9c",
    "AWS access key id": "ASIACANARYKEYID00042",
    "AWS secret access key": "canary-aws-secret-4e7d1a9b3c6f2e8d",
    "AWS session token": "canary-aws-session-token-Zm9vYmFyYmF6",
    "URL userinfo": "canarypass-8c3e1f",
    "fal key": "fal-canary-key-7d3a9e2b41:secret-6f0c",
    "Webhook secret": "whsec_Y2FuYXJ5LXdlYmhvb2stc2VjcmV0LTlmNGUyYTdjNjE=",
    "C2PA key password": "c2pa-canary-password-9e1f4b",
}
WEBHOOK_SECRET_VAR = "SORAFLOW_TEST_WEBHOOK_SECRET"
FAILING_ENDPOINT_ID = "secrets-test-userinfo-endpoint"


def hits(data: str | bytes, where: str) -> list[str]:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
    return [f"{name} in {where}" for name, canary in CANARIES.items() if canary in text]


def storyboard(tmp_path: Path, name: str, shots: int, model: str | None = None) -> Path:
    data = {"title": f"Secrets {name}", "size": "720x1280", "shots": [{"id": f"s{i}", "seconds": 4, "visual": f"{name} shot {i}"} for i in range(shots)]}
    if model:
        data["model"] = model
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def fal_models(tmp_path: Path, simulator) -> Path:
    """The fal endpoint pointed at the session simulator's fal port, its CA trusted."""
    path = tmp_path / "fal-models.yaml"
    path.write_text(yaml.safe_dump({"endpoints": {"fal": {"base_url": simulator.fal_url, "ca_file": str(simulator.fal_ca_file)}}}))
    return path


# --- reading what the runs left -------------------------------------------------------------


def decoded_results(root: Path) -> list[tuple[str, str]]:
    """Every Prefect result record under ``root``, loaded with its own serializer."""
    from prefect.results import ResultRecord

    out = []
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        try:
            record = ResultRecord.deserialize(path.read_bytes())
        except Exception:  # noqa: BLE001 - not a result record (a lock, a metadata file): read as bytes elsewhere
            continue
        value = record.result
        text = value.model_dump_json() if hasattr(value, "model_dump_json") else repr(value)
        out.append((str(path), f"{text} {record.metadata.model_dump_json()}"))
    return out


def sqlite_dump(path: Path) -> str:
    with sqlite3.connect(path) as db:
        return "\n".join(db.iterdump())


def scan_files(root: Path) -> tuple[list[str], int, int]:
    """Canary hits in every file under ``root`` (raw bytes, SQLite dumped, results decoded)."""
    found, files, results = [], 0, 0
    for path in root.rglob("*"):
        if path.is_file():
            files += 1
            found += hits(path.read_bytes(), str(path))
            if path.suffix in (".sqlite", ".db"):
                found += hits(sqlite_dump(path), f"{path} (dumped)")
    for where, text in decoded_results(root):
        results += 1
        found += hits(text, f"decoded result {where}")
    return found, files, results


def server_records(out_root: Path, since: datetime) -> dict[str, list[str]]:
    """What the Prefect server holds about the renders under ``out_root``, as JSON texts."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterStartTime, LogFilter, LogFilterFlowRunId
    from prefect.events.filters import EventFilter, EventOccurredFilter

    with get_client(sync_client=True) as client:
        runs = [
            run
            for run in client.read_flow_runs(flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since - timedelta(seconds=5))))
            if str(out_root) in json.dumps(run.parameters)
        ]
        ids = [run.id for run in runs]
        records: dict[str, list[str]] = {"flow runs": [run.model_dump_json() for run in runs]}
        records["flow run states"] = [s.model_dump_json() for run_id in ids for s in client.read_flow_run_states(run_id)]
        task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)), limit=200)
        records["task runs"] = [t.model_dump_json() for t in task_runs]
        records["task run states"] = [s.model_dump_json() for t in task_runs for s in client.read_task_run_states(t.id)]
        records["logs"] = [
            log.model_dump_json()
            for run_id in ids
            for log in client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])), limit=200)
        ]
        records["artifacts"] = [a.model_dump_json() for a in client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))]

        # Events reach the server's store a moment after they happen: read until every run's
        # terminal event is there.
        deadline = time.monotonic() + 60
        while True:
            events, page = [], client.read_events(EventFilter(occurred=EventOccurredFilter(since=since - timedelta(seconds=5))), limit=50)
            while True:
                events += page.events
                if not page.next_page:
                    break
                page = client.read_events_page(str(page.next_page))
            ended = {e.resource.id for e in events if e.event.startswith("prefect.flow-run.") and e.event.rsplit(".", 1)[-1] in ("Completed", "Failed", "Crashed")}
            if {f"prefect.flow-run.{i}" for i in ids} <= ended or time.monotonic() > deadline:
                break
            time.sleep(1)
        texts = [e.model_dump_json() for e in events]
        records["events"] = texts
    return records


# --- the test -----------------------------------------------------------------------------------


def encrypted_signer(tmp_path: Path, monkeypatch) -> dict[str, str]:
    """A development chain whose key is encrypted with the password canary; the key's own PEM
    lines (encrypted and decrypted, as soraflow hands it to c2pa) become canaries too."""
    from cryptography.hazmat.primitives import serialization

    from soraflow.provenance import make_dev_chain

    chain = make_dev_chain(tmp_path / "certs")
    key = serialization.load_pem_private_key(chain.private_key.read_bytes(), None)
    password = CANARIES["C2PA key password"].encode()
    encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(password))
    decrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    chain.private_key.write_bytes(encrypted)
    for name, pem in (("C2PA key (encrypted)", encrypted), ("C2PA key", decrypted)):
        monkeypatch.setitem(CANARIES, f"{name}, first line", pem.decode().splitlines()[1])
    return {**chain.environment(), "SORAFLOW_PROVENANCE_PRIVATE_KEY_PASSWORD": CANARIES["C2PA key password"]}


def test_no_credential_reaches_any_output(tmp_path, simulator, s3_endpoint, s3_client, monkeypatch):
    from prefect.settings import PREFECT_API_URL
    from prefect.variables import Variable

    from soraflow import watch

    storm = SimProcess(tmp_path, "--latency", "1", "--faults", "429=0.2,500=0.1,reset=0.05,moderation=0.3", "--seed", "5")
    bucket = "soraflow-secrets-test"
    s3_client.create_bucket(Bucket=bucket)
    # The failing render's endpoint is reported retired by the model watch: the refusal names
    # the endpoint, which must be shown without its userinfo.
    seen = Variable.get(watch.WATCH_VARIABLE_NAME, default=None) or {}
    Variable.set(
        watch.WATCH_VARIABLE_NAME,
        {**seen, FAILING_ENDPOINT_ID: {"sora-2": {"status": "gone", "shutdown_date": "2026-09-24", "prices": {}}}},
        overwrite=True,
    )
    base = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPENAI_"))},
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "PREFECT_LOGGING_LEVEL": "DEBUG",  # the most a run could ever log
        "PREFECT_LOCAL_STORAGE_PATH": str(tmp_path / "prefect-storage"),
        "SORAFLOW_STATE_DIR": str(tmp_path / "state"),
        "SORAFLOW_MAX_CONCURRENT_SUBMISSIONS": "16",
        "OPENAI_API_KEY": CANARIES["OpenAI key"],
        "OPENAI_BASE_URL": simulator.base_url,
        "AWS_ACCESS_KEY_ID": CANARIES["AWS access key id"],
        "AWS_SECRET_ACCESS_KEY": CANARIES["AWS secret access key"],
        "AWS_SESSION_TOKEN": CANARIES["AWS session token"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-config"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    # The normal render's endpoint declares webhooks; the receiver reads the secret, the simulator signs with it.
    receiver_port = free_port()
    (tmp_path / "models.yaml").write_text(yaml.safe_dump({"endpoints": {"openai": {"webhooks": {
        "url": f"http://127.0.0.1:{receiver_port}/webhooks/openai", "secret_env": WEBHOOK_SECRET_VAR}}}}))
    receiver = ReceiverProcess(tmp_path, {**base, "SORAFLOW_MODELS": str(tmp_path / "models.yaml"),
                                          WEBHOOK_SECRET_VAR: CANARIES["Webhook secret"]}, port=receiver_port)
    simulator.state.webhooks.configure_project(receiver.delivery_url("openai"), CANARIES["Webhook secret"])
    runs = {
        "normal": ([], {"SORAFLOW_MODELS": str(tmp_path / "models.yaml"), "SORAFLOW_WEBHOOK_SAFETY_POLL_SECONDS": "120"}),
        "s3": (["--storage", f"s3://{bucket}/films"], encrypted_signer(tmp_path, monkeypatch)),
        "storm": ([], {"OPENAI_BASE_URL": f"{storm.url}/v1", "SORAFLOW_REQUEST_TIMEOUT_SECONDS": "5", "SORAFLOW_TRANSIENT_RETRIES": "8"}),
        "failing": ([], {
            "OPENAI_BASE_URL": simulator.base_url.replace("http://", f"http://canaryuser:{CANARIES['URL userinfo']}@"),
            "SORAFLOW_ENDPOINT_ID": FAILING_ENDPOINT_ID,
        }),
        # fal: the key goes out as `Authorization: Key ...` to the queue, the storage and the history.
        "fal": ([], {"FAL_KEY": CANARIES["fal key"], "SORAFLOW_MODELS": str(fal_models(tmp_path, simulator))}),
    }
    since = datetime.now(timezone.utc)
    procs = {}
    try:
        for name, (args, env) in runs.items():
            sb = storyboard(tmp_path, name, shots=6 if name == "storm" else 2, model="veo-3.1-fal" if name == "fal" else None)
            procs[name] = subprocess.Popen(
                [*SOR, "--debug", "render", str(sb), "--out", str(tmp_path / "out" / name), *args],
                env={**base, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
        outputs = {}
        for name, proc in procs.items():
            try:
                stdout, stderr = proc.communicate(timeout=420)
            except subprocess.TimeoutExpired:
                proc.kill()
                stdout, stderr = proc.communicate()
                pytest.fail(f"render {name} did not finish:\n{stdout[-2000:]}\n{stderr[-2000:]}")
            outputs[name] = (proc.returncode, stdout, stderr)
    finally:
        storm.stop()
        simulator.state.webhooks.configure_project(None)
        receiver.stop()
        Variable.set(watch.WATCH_VARIABLE_NAME, seen, overwrite=True)

    # The renders did what they were meant to: the canaries were used, not avoided.
    assert outputs["normal"][0] == 0 and outputs["s3"][0] == 0 and outputs["fal"][0] == 0, {k: v[2][-1500:] for k, v in outputs.items()}
    assert sum(1 for j in simulator.state.jobs.all() if j.dialect == "fal") == 2  # the fal render really went to fal's dialect
    assert outputs["failing"][0] != 0 and "is no longer served at" in outputs["failing"][2]
    assert len(s3_client.list_objects_v2(Bucket=bucket).get("Contents", [])) >= 5
    assert json.loads((tmp_path / "out" / "s3" / "manifest.json").read_text())["film"]["c2pa_manifest"]  # signed with the encrypted key

    # the normal render's clips were ended by verified deliveries (the webhook secret was used); the
    # project's webhook also delivers the S3 render's jobs (same simulator), which polls regardless
    from soraflow.ledger import Deliveries, Ledger

    delivered = {d.job_id for d in Deliveries(Ledger(tmp_path / "state" / "ledger.sqlite")).all()}
    normal_jobs = {c["job_id"] for c in json.loads((tmp_path / "out" / "normal" / "manifest.json").read_text())["clips"]}
    assert len(normal_jobs) == 2 and normal_jobs <= delivered

    found = hits(receiver.output(), "the webhook receiver's output")
    for name, (_, stdout, stderr) in outputs.items():
        found += hits(stdout, f"{name} stdout") + hits(stderr, f"{name} stderr")
    file_hits, files, results = scan_files(tmp_path / "out")
    found += file_hits
    state_hits, state_files, state_results = scan_files(tmp_path / "state")
    found += state_hits
    storage_hits, _, storage_results = scan_files(tmp_path / "prefect-storage") if (tmp_path / "prefect-storage").exists() else ([], 0, 0)
    found += storage_hits
    for obj in s3_client.list_objects_v2(Bucket=bucket)["Contents"]:
        head = s3_client.head_object(Bucket=bucket, Key=obj["Key"])
        found += hits(json.dumps(head["Metadata"]), f"s3 metadata of {obj['Key']}")
        if obj["Key"].endswith(".json"):
            found += hits(s3_client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read(), f"s3 object {obj['Key']}")
    records = server_records(tmp_path / "out", since)
    for kind, texts in records.items():
        found += [hit for text in texts for hit in hits(text, f"Prefect {kind}")]

    # Everything was really searched: five flow runs, their logs, events, artifacts, results.
    assert len(records["flow runs"]) == 5, len(records["flow runs"])
    assert all(records[kind] for kind in ("flow run states", "task runs", "task run states", "logs", "artifacts", "events"))
    assert sum('"soraflow.video.completed"' in text for text in records["events"]) == len(delivered)  # the receiver's, searched too
    assert files and state_files and state_results + storage_results + results >= 6
    assert found == [], "\n".join(found)


def test_the_search_finds_a_canary_inside_an_encoded_prefect_result(tmp_path):
    """The positive control: results are base64 cloudpickle, so a byte search cannot see into
    them; decoding with Prefect's serializer does."""
    from prefect.results import ResultRecord, ResultRecordMetadata
    from prefect.serializers import PickleSerializer

    from soraflow.archive import StoredClip

    secret = StoredClip(
        clip_key="0" * 32, job_id="video_1", local_path="/x", sha256="0" * 64, size=1, duration=4.0, uri="s3://b/k", key="k",
        uploaded=True, link=f"https://b.s3.amazonaws.com/k?X-Amz-Credential={CANARIES['AWS access key id']}",
    )
    record = ResultRecord(metadata=ResultRecordMetadata(serializer=PickleSerializer(picklelib="cloudpickle"), storage_key="k"), result=secret)
    (tmp_path / "soraflow-store-0000").write_bytes(record.serialize())
    assert hits((tmp_path / "soraflow-store-0000").read_bytes(), "raw") == []  # what the old test searched
    found, _, results = scan_files(tmp_path)
    assert results == 1 and found == ["AWS access key id in decoded result " + str(tmp_path / "soraflow-store-0000")]
