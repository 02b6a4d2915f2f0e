"""render-storyboard signs the film (C2PA): a real Prefect server, the simulator over HTTP, real
ffmpeg, moto's S3, and a development chain made by `soraflow provenance dev-cert`. The film is
read back with c2pa's own Reader, not through soraflow."""

from __future__ import annotations

import json
from pathlib import Path

import c2pa
import pytest
import yaml
from typer.testing import CliRunner

from soraflow.cli import app
from soraflow.flows.render import RenderRequest, render_storyboard
from soraflow.preflight import PreflightError
from soraflow.provenance.definition import CLIP_FIELDS, TRAINED_ALGORITHMIC_MEDIA
from soraflow.simulator.embedded import running_simulator
from soraflow.storage import film_object_key

from .test_render import streams
from .test_render_veo import no_credentials  # noqa: F401 - the fixture: every profile on the embedded simulator

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.slow]


@pytest.fixture
def dev_signer(tmp_path, monkeypatch):
    """`soraflow provenance dev-cert DIR`, and its export lines put into the environment."""
    made = CliRunner().invoke(app, ["provenance", "dev-cert", str(tmp_path / "certs")])
    assert made.exit_code == 0, made.output
    for line in made.stdout.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        monkeypatch.setenv(name, value.strip("'"))
    return tmp_path / "certs"


def read_with_c2pa(film: Path) -> tuple[str, dict, str]:
    """The validation state, the active manifest, and the whole store as c2pa reads it."""
    with open(film, "rb") as f, c2pa.Reader("video/mp4", f) as reader:
        return reader.get_validation_state(), reader.get_active_manifest(), reader.json()


def actions_of(manifest: dict) -> list[dict]:
    return next(a["data"]["actions"] for a in manifest["assertions"] if a["label"].startswith("c2pa.actions"))


def clip_facts(manifest: dict) -> list[tuple]:
    return [
        (f["shot_id"], f["take"], f["part"], f["model"], f["endpoint"], f["endpoint_identity"], f["sha256"])
        for f in (i["metadata"][CLIP_FIELDS] for i in manifest["ingredients"])
    ]


def film_artifact(flow_run_id) -> str:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["soraflow-film-the-lighthouse-keeper"])),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
        )
    [artifact] = found
    return artifact.data


def test_the_demo_film_is_signed_read_back_by_c2pa_kept_on_an_unchanged_rerun_and_tampering_fails_verify(
    sim_env, lighthouse, dev_signer, s3_bucket, s3_client, tmp_path
):
    out = tmp_path / "out"
    request = RenderRequest(storyboard_path=str(lighthouse), out_dir=str(out), storage=f"s3://{s3_bucket}/films")
    state = render_storyboard(request, return_state=True)
    assert state.is_completed(), state.message
    result, film = state.result(), out / "film.mp4"
    manifest_json = json.loads((out / "manifest.json").read_text())

    validation, manifest, store = read_with_c2pa(film)
    assert validation == "Valid"  # intact; the development chain is untrusted, which is said, not failed
    assert manifest["label"] == result.c2pa_manifest == manifest_json["film"]["c2pa_manifest"]
    assert manifest["title"] == "The Lighthouse Keeper"
    assert manifest["claim_generator_info"][0]["name"] == "soraflow"
    created = actions_of(manifest)[0]
    assert (created["action"], created["digitalSourceType"]) == ("c2pa.created", TRAINED_ALGORITHMIC_MEDIA)
    assert clip_facts(manifest) == [
        (c["shot_id"], 1, c["part"], c["model"], "openai", manifest_json["endpoints"]["openai"], c["sha256"]) for c in manifest_json["clips"]
    ]
    assert [c["model"] for c in manifest_json["clips"]] == ["sora-2"] * 4
    # nothing secret: neither the endpoint's key nor the signing key, in the film's bytes or its manifest
    key_body = "".join(l for l in (dev_signer / "soraflow-dev-signer.key").read_text().splitlines() if not l.startswith("-----"))
    film_bytes = film.read_bytes()
    for canary in (sim_env.api_key, key_body, key_body[:40]):
        assert canary.encode() not in film_bytes and canary not in store and canary not in (out / "manifest.json").read_text()
    assert "prompt" not in store  # no prompt unless the storyboard opts in
    # the same film, plus a manifest: it still plays with the same streams and length
    info = streams(film)
    assert [s["codec_name"] for s in info["video"]] == ["h264"] and [s["codec_name"] for s in info["audio"]] == ["aac"]
    assert abs(info["duration"] - 28) <= 0.2
    # the stored film names its manifest
    head = s3_client.head_object(Bucket=s3_bucket, Key=f"films/{film_object_key('The Lighthouse Keeper', 'film.mp4')}")
    assert head["Metadata"]["c2pa-manifest"] == result.c2pa_manifest

    verified = CliRunner().invoke(app, ["verify", str(film)])
    assert verified.exit_code == 0 and verified.stdout.startswith("Valid: the film is intact"), verified.output
    data = bytearray(film_bytes)
    data[data.index(b"mdat") + 100_000] ^= 0x01  # one bit of the video data
    (tmp_path / "tampered.mp4").write_bytes(bytes(data))
    tampered = CliRunner().invoke(app, ["verify", str(tmp_path / "tampered.mp4")])
    assert tampered.exit_code == 1
    assert tampered.stdout.startswith("Invalid: the film's media changed after it was signed"), tampered.output

    # the flow's film artifact shows what verify shows
    page = film_artifact(state.state_details.flow_run_id)
    assert "### Provenance (C2PA)" in page and "**Valid: the film is intact" in page and "| keeper | 1 | 2/2 | sora-2 | openai |" in page

    made, requests = (film.stat().st_mtime_ns, film_bytes), sim_env.stats()["requests_total"]
    again = render_storyboard(request, return_state=True)
    assert again.is_completed(), again.message
    assert (film.stat().st_mtime_ns, film.read_bytes()) == made and again.result().c2pa_manifest == result.c2pa_manifest
    assert sim_env.stats()["requests_total"] == requests


def test_a_mixed_film_names_each_clips_endpoint_and_model_its_chosen_takes_and_a_changed_shot_is_signed_again(
    no_credentials, dev_signer, tmp_path  # noqa: F811
):
    board = {
        "title": "Two Dialects",
        "model": "sora-2",
        "size": "720x1280",
        "shots": [
            {"id": "quay", "seconds": 4, "visual": "A wet stone quay at night, one lamp.", "audio": "rain"},
            {"id": "boat", "seconds": 4, "visual": "A rowing boat leaves the quay.", "model": "veo-3.1-fast-generate-001", "takes": 2},
        ],
    }
    path, out = tmp_path / "board.yaml", tmp_path / "out"

    def render():
        path.write_text(yaml.safe_dump(board))
        state = render_storyboard(RenderRequest(storyboard_path=str(path), out_dir=str(out)), return_state=True)
        assert state.is_completed(), state.message
        made = json.loads((out / "manifest.json").read_text())
        validation, manifest, _ = read_with_c2pa(out / "film.mp4")
        assert validation == "Valid" and manifest["label"] == state.result().c2pa_manifest == made["film"]["c2pa_manifest"]
        return state.result(), {(c["shot_id"], c["take"]): c["sha256"] for c in made["clips"]}, clip_facts(manifest)

    first, sha, facts = render()
    assert len(sha) == 3  # manifest.json lists every take; the film's manifest only the chosen ones (take 1 of each)
    assert facts == [
        ("quay", 1, 1, "sora-2", "openai", "soraflow-simulator", sha["quay", 1]),
        ("boat", 1, 1, "veo-3.1-fast-generate-001", "vertex", "soraflow-simulator:google-genai", sha["boat", 1]),
    ]

    # another take chosen: nothing generated, the film stitched and signed again with that take
    jobs = len(running_simulator().jobs())
    board["shots"][1]["choose"] = 2
    second, sha2, facts = render()
    assert len(running_simulator().jobs()) == jobs and sha2 == sha
    assert second.c2pa_manifest not in (None, first.c2pa_manifest)
    assert facts[1] == ("boat", 2, 1, "veo-3.1-fast-generate-001", "vertex", "soraflow-simulator:google-genai", sha["boat", 2])
    assert sha["boat", 2] != sha["boat", 1]

    # one shot changed: only it is generated again, and the film signed again with its new ingredient
    board["shots"][0]["visual"] = "A wet stone quay at night, one lamp, in fog."
    third, sha3, facts = render()
    assert len(running_simulator().jobs()) == jobs + 1
    assert third.c2pa_manifest not in (None, second.c2pa_manifest)
    assert facts[0][:3] == ("quay", 1, 1) and facts[0][6] == sha3["quay", 1] != sha["quay", 1]
    assert facts[1][:2] == ("boat", 2) and facts[1][6] == sha["boat", 2]


def test_provenance_required_with_no_signer_is_refused_before_the_first_create(sim_env, lighthouse, tmp_path, monkeypatch):
    for var in ("SORAFLOW_PROVENANCE_CERT_CHAIN", "SORAFLOW_PROVENANCE_PRIVATE_KEY", "SORAFLOW_PROVENANCE_PRIVATE_KEY_SECRET"):
        monkeypatch.delenv(var, raising=False)
    board = yaml.safe_load(lighthouse.read_text()) | {"provenance": "required"}
    board["shots"][1]["input_reference"] = str(lighthouse.parent / board["shots"][1]["input_reference"])
    path = tmp_path / "board.yaml"
    path.write_text(yaml.safe_dump(board))
    jobs = len(sim_env.jobs())

    state = render_storyboard(RenderRequest(storyboard_path=str(path), out_dir=str(tmp_path / "out")), return_state=True)
    assert state.is_failed()
    with pytest.raises(PreflightError, match="a signed film is required \\(the storyboard's provenance: required\\) but no C2PA signer is configured"):
        state.result()

    # the setting, through the CLI: refused by its preflight before Prefect starts
    monkeypatch.setenv("SORAFLOW_PROVENANCE", "required")
    refused = CliRunner().invoke(app, ["render", str(lighthouse), "--out", str(tmp_path / "cli-out")])
    assert refused.exit_code == 2, refused.output
    assert "a signed film is required (SORAFLOW_PROVENANCE=required) but no C2PA signer is configured" in refused.stderr
    assert "soraflow provenance dev-cert DIR" in refused.stderr and "Traceback" not in refused.output
    assert len(sim_env.jobs()) == jobs  # 0 jobs at the simulator
