"""The tasks layer's part of models and endpoints: the profiles from the Prefect Variable
``soraflow-models`` (for deployments), and a key from a Prefect Secret block."""

from __future__ import annotations

import uuid

import pytest

from soraflow.models import load_catalog, route_endpoints
from soraflow.simulator import Simulator, SimulatorConfig, simulated_models
from soraflow.tasks import runtime

from ..fixtures.endpoints import bearer

pytestmark = pytest.mark.usefixtures("prefect_server")

PROFILES = "models:\n  house-clip: {like: sora-2, model: house-clip-v1, retires: null}\n"


def test_the_variable_holds_the_profiles_when_no_file_is_named(monkeypatch, tmp_path):
    from prefect.variables import Variable

    monkeypatch.delenv("SORAFLOW_MODELS", raising=False)
    Variable.set(runtime.MODELS_VARIABLE_NAME, PROFILES, overwrite=True)
    try:
        assert runtime.model_catalog().profile("house-clip").model == "house-clip-v1"
        assert runtime.model_catalog().sources[-1] == "Prefect Variable soraflow-models"
        # A file named by SORAFLOW_MODELS wins over the Variable.
        (tmp_path / "models.yaml").write_text("models:\n  other-clip: {like: sora-2}\n")
        monkeypatch.setenv("SORAFLOW_MODELS", str(tmp_path / "models.yaml"))
        catalog = runtime.model_catalog()
        assert "other-clip" in catalog.profiles and "house-clip" not in catalog.profiles
    finally:
        Variable.unset(runtime.MODELS_VARIABLE_NAME)


def test_a_key_in_a_secret_block_is_read_by_the_task_that_calls_the_endpoint(endpoint_proxy, monkeypatch, tmp_path):
    from prefect.blocks.system import Secret

    block = f"gateway-key-{uuid.uuid4().hex[:8]}"
    Secret(value="gw-secret-1").save(block)
    catalog = load_catalog(text=f"""
endpoints:
  vault: {{base_url: http://127.0.0.1:9/v1, key_secret: {block}}}
models:
  vault-clip: {{endpoint: vault, model: vault-clip-v1, seconds: [4], sizes: {{1280x720: 0.1}}}}
""")
    with Simulator(SimulatorConfig(latency=0.2, cache_dir=str(tmp_path / "renders"), models=simulated_models(catalog))) as sim:
        gateway = endpoint_proxy(sim, auth=bearer("gw-secret-1"))
        route = route_endpoints(catalog, {}).route("vault")  # a Secret block counts as credentials
        assert not route.simulated
        route = route.model_copy(update={"endpoint": route.endpoint.model_copy(update={"base_url": gateway.base_url})})
        job = runtime.provider(route).create(model="vault-clip-v1", size="1280x720", seconds=4, prompt="Shot vault")
        assert job.model == "vault-clip-v1"
        assert {s.headers["authorization"] for s in gateway.seen} == {"Bearer gw-secret-1"}
        assert "gw-secret-1" not in route.model_dump_json()
        from soraflow.redaction import redact_text

        assert redact_text("echoed gw-secret-1") == "echoed REDACTED"  # registered where it was read


def test_a_task_failing_with_an_sdk_error_stores_only_its_type_and_message(tmp_path):
    """An exception soraflow does not classify becomes an UnexpectedError before Prefect pickles
    it into result storage: json.JSONDecodeError would have taken the whole body (``.doc``)."""
    import json

    from prefect import task

    from soraflow.errors import UnexpectedError

    @task(persist_result=True, result_storage=tmp_path / "results", retries=0)
    @runtime.clean_errors
    def parse(body: str) -> dict:
        return json.loads(body)

    state = parse('{"id": "video_1", "note": "response-body-canary-9e" ', return_state=True)
    assert state.is_failed()
    err = state.result(raise_on_failure=False)
    assert isinstance(err, UnexpectedError) and err.type_name == "JSONDecodeError"
    assert state.message.startswith("Task run encountered an exception UnexpectedError: JSONDecodeError: Expecting")
    stored = [p.read_bytes() for p in (tmp_path / "results").iterdir()]
    assert stored and all(b"response-body-canary-9e" not in data for data in stored)
    from prefect.results import ResultRecord

    records = [ResultRecord.deserialize(data) for data in stored]  # decoded with Prefect's own serializer
    assert [type(r.result).__name__ for r in records] == ["UnexpectedError"]
    assert all("response-body-canary-9e" not in repr(r.result.__dict__) for r in records)


def test_an_aws_credentials_block_is_registered_where_it_is_loaded(monkeypatch):
    from prefect_aws import AwsCredentials

    from soraflow.redaction import redact_text

    block = f"aws-{uuid.uuid4().hex[:8]}"
    AwsCredentials(aws_access_key_id="AKIABLOCKCANARY0042", aws_secret_access_key="block-secret-canary-9c1e",
                   aws_session_token="block-session-canary-5f3b", region_name="us-east-1").save(block)
    monkeypatch.setenv("SORAFLOW_AWS_CREDENTIALS_BLOCK", block)
    assert runtime.aws_session() is not None
    assert redact_text("AKIABLOCKCANARY0042 block-secret-canary-9c1e block-session-canary-5f3b") == "REDACTED REDACTED REDACTED"
