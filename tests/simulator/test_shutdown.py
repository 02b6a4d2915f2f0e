"""Answering as the retired service does: whole shutdown, and one model's date."""

from __future__ import annotations

import openai
import pytest

from soraflow.watch.availability import model_status
from soraflow.providers.base import ModelInfo
from soraflow.simulator.retirement import OPENAI_SORA_SHUTDOWN_DATE

from .conftest import SORA_MODELS, api_client, by_id, sdk_client
from .media import mp4

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning")
SHUTDOWN = OPENAI_SORA_SHUTDOWN_DATE


@pytest.mark.parametrize("model", ["sora-2", "sora-2-pro-2025-10-06"])
def test_create_on_a_shut_down_service_names_the_model_and_the_date(start_sim, model):
    sim = start_sim(shutdown=True)
    with pytest.raises(openai.NotFoundError) as err:
        sdk_client(sim).videos.create(model=model, prompt="Shot after the end", seconds="4")
    assert err.value.code == "model_not_found"
    assert model in err.value.message and SHUTDOWN in err.value.message and "shut down" in err.value.message
    assert sim.jobs() == []


def test_models_show_the_past_shutdown_date_by_default(start_sim):
    sim = start_sim(shutdown=True)
    client = sdk_client(sim)
    models = client.models.list()
    assert [m.id for m in models] == SORA_MODELS
    assert {m.shutdown_date for m in models} == {SHUTDOWN}
    offered = {m.id: ModelInfo(id=m.id, shutdown_date=m.shutdown_date) for m in models}
    assert model_status("sora-2", offered) == ("gone", SHUTDOWN)  # soraflow's own reading of it


def test_models_can_be_left_out_instead(start_sim):
    sim = start_sim(shutdown=True, shutdown_listing="omit")
    client = sdk_client(sim)
    assert list(client.models.list()) == []
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("sora-2")


def test_one_model_retiring_with_a_future_date(start_sim):
    sim = start_sim(model_shutdown_dates={"sora-2-pro": "2099-01-31"})
    client = sdk_client(sim)
    dates = {m.id: m.shutdown_date for m in client.models.list()}
    assert dates["sora-2-pro"] == dates["sora-2-pro-2025-10-06"] == "2099-01-31"
    assert dates["sora-2"] is None
    assert client.models.retrieve("sora-2-pro").shutdown_date == "2099-01-31"
    assert client.videos.create(model="sora-2-pro", prompt="Shot still served", seconds="4").status == "queued"


def test_one_model_retired_with_a_past_date(start_sim):
    sim = start_sim(model_shutdown_dates={"sora-2": "2026-01-15"})
    client = sdk_client(sim)
    for model in ("sora-2", "sora-2-2025-12-08"):
        with pytest.raises(openai.NotFoundError) as err:
            client.videos.create(model=model, prompt="Shot retired", seconds="4")
        assert "2026-01-15" in err.value.message
    assert client.videos.create(model="sora-2-pro", prompt="Shot pro lives", seconds="4").status == "queued"


def test_remix_on_a_retired_model_is_refused(start_sim):
    sim = start_sim()
    client = sdk_client(sim)
    source = client.videos.create_and_poll(prompt="Shot before the end", seconds="4")
    sim.state.config.model_shutdown_dates = {"sora-2": "2026-01-01"}
    with pytest.raises(openai.NotFoundError) as err:
        client.videos.remix(source.id, prompt="Shot after the end")
    assert err.value.code == "model_not_found"
    with api_client(sim) as api:  # the finished job and its content stay reachable
        assert api.get(f"videos/{source.id}/content").status_code == 200


@pytest.mark.parametrize("operation", ["edit", "extend"])
def test_edit_and_extension_on_a_retired_model_are_refused(start_sim, operation):
    sim = start_sim()
    client = sdk_client(sim)
    source = client.videos.create_and_poll(prompt="Shot before the end", seconds="4")
    sim.state.config.model_shutdown_dates = {"sora-2": "2026-01-01"}
    with pytest.raises(openai.NotFoundError) as err:
        if operation == "edit":
            client.videos.edit(prompt="Shot after the end", **by_id(source.id))
        else:
            client.videos.extend(prompt="Shot after the end", seconds="4", **by_id(source.id))
    assert err.value.code == "model_not_found" and err.value.param == "model"
    assert "sora-2" in err.value.message and "2026-01-01" in err.value.message
    assert len(sim.jobs()) == 1


def test_an_uploaded_source_on_a_shut_down_service_is_refused(start_sim, tmp_path):
    sim = start_sim(shutdown=True)
    client = sdk_client(sim)
    upload = ("upload.mp4", mp4(tmp_path / "upload.mp4", 720, 1280, 4), "video/mp4")
    for call in (lambda: client.videos.edit(prompt="Shot after the end", video=upload),
                 lambda: client.videos.extend(prompt="Shot after the end", seconds="4", video=upload)):
        with pytest.raises(openai.NotFoundError) as err:
            call()
        assert err.value.code == "model_not_found" and SHUTDOWN in err.value.message
    assert sim.jobs() == []
