"""One definition of the deployments: prefect.yaml is generated from it, serve uses its own names."""

from __future__ import annotations

from pathlib import Path

import yaml

from soraflow.deployments.definitions import DEFINITIONS, PULL_STEPS, SERVED_NAME, prefect_yaml, served_deployments

PREFECT_YAML = Path(__file__).resolve().parents[2] / "deployments" / "prefect.yaml"


def test_prefect_yaml_is_generated_from_the_definitions():
    assert PREFECT_YAML.read_text() == prefect_yaml(), (
        "deployments/prefect.yaml differs from deployments/definitions.py: "
        "python -m soraflow.deployments.definitions > deployments/prefect.yaml"
    )
    config = yaml.safe_load(PREFECT_YAML.read_text())
    assert config["pull"] == PULL_STEPS
    assert [d["name"] for d in config["deployments"]] == [d.flow_name for d in DEFINITIONS]
    for deployment in config["deployments"]:
        # A module path: a worker imports the flow from the installed package, wherever it is.
        assert ":" not in deployment["entrypoint"] and deployment["entrypoint"].startswith("soraflow.flows.")


def test_served_deployments_have_their_own_names_and_the_same_schedules():
    served = served_deployments(inbox="/srv/inbox")
    assert [(d.flow_name, d.name) for d in served] == [(d.flow_name, SERVED_NAME) for d in DEFINITIONS]
    assert all(d.name != d.flow_name for d in served)  # never the work pool's <flow>/<flow>
    by_flow = {d.flow_name: d for d in served}
    for definition in DEFINITIONS:
        crons = [s.schedule.cron for s in by_flow[definition.flow_name].schedules]
        assert crons == ([definition.cron] if definition.cron else [])
        assert by_flow[definition.flow_name].entrypoint == definition.entrypoint
    assert by_flow["render-folder"].parameters == {"source": "/srv/inbox", "out_root": "out"}


def test_the_pull_step_enters_the_service_dir_and_creates_it(tmp_path, monkeypatch):
    from soraflow.deployments.pull import enter_service_dir

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SORAFLOW_SERVICE_DIR", str(tmp_path / "service"))
    assert enter_service_dir() == {"directory": str(tmp_path / "service")}
    assert Path.cwd() == tmp_path / "service"
