"""fal as the unchanged fal-client SDK speaks it, over TLS with the settings the simulator
prints: upload, submit, status, result, the video; fal's error shapes; the request history
(finished only, lag, payloads, pages, refused), prices and model metadata; cancel; the proxy.

One simulator serves the module. The SDK runs in a child process: it reads FAL_QUEUE_RUN_HOST
once, when first imported, so it gets the printed variables before that."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from soraflow.simulator import Simulator, SimulatorConfig

from .media import close_colours, colour_at, png, probe

KLING_I2V = "fal-ai/kling-video/v3/pro/image-to-video"
VEO = "fal-ai/veo3.1"
RED = (200, 40, 40)

SDK_SCRIPT = r"""
import json, sys, time
import fal_client, httpx

image, out = sys.argv[1], sys.argv[2]
client = fal_client.SyncClient()            # FAL_KEY, FAL_QUEUE_RUN_HOST, SSL_CERT_FILE, HTTPS_PROXY from the environment
url = client.upload_file(image)             # token + CDN upload, at fal-client's fixed hosts (tunnelled)
asks = {
    "kling": ("fal-ai/kling-video/v3/pro/image-to-video",
              {"prompt": "Shot keeper\nThe keeper at the window.", "duration": "5", "start_image_url": url, "generate_audio": True}),
    "veo": ("fal-ai/veo3.1", {"prompt": "Shot boat\nA boat at night.", "duration": "4s", "aspect_ratio": "9:16",
                              "resolution": "720p", "generate_audio": False}),
}
report = {"upload": url}
handles = {name: client.submit(app, args) for name, (app, args) in asks.items()}
for name, handle in handles.items():
    app = asks[name][0]
    seen = []
    while True:
        status = client.status(app, handle.request_id, with_logs=True)
        seen.append(type(status).__name__)
        if isinstance(status, fal_client.Completed):
            break
        time.sleep(0.1)
    result = client.result(app, handle.request_id)   # status said COMPLETED: one fetch
    video = httpx.get(result["video"]["url"])         # the simulator's own CDN route
    video.raise_for_status()
    path = f"{out}/{name}.mp4"
    open(path, "wb").write(video.content)
    report[name] = {"request_id": handle.request_id, "status_url": handle.status_url, "seen": seen, "metrics": status.metrics,
                    "logs": status.logs, "result": result, "path": path}
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def sim(render_cache):
    with Simulator(SimulatorConfig(latency=0.6, cache_dir=str(render_cache))) as sim:
        yield sim


@pytest.fixture
def fal(sim):
    """A plain https client of the fal port, trusting the simulator's CA, with a key."""
    sim.reset()
    sim.config.fal_history, sim.config.fal_history_lag_seconds = "serve", 0.0
    with httpx.Client(base_url=sim.fal_url, verify=ssl.create_default_context(cafile=sim.fal_ca_file), headers={"Authorization": "Key any"}) as client:
        yield client
    sim.set_faults("")
    sim.config.fal_history, sim.config.fal_history_lag_seconds = "serve", 0.0


def submit(fal: httpx.Client, app: str, args: dict) -> dict:
    response = fal.post(f"/{app}", json=args)
    assert response.status_code == 200, response.text
    return response.json()


def veo_args(prompt: str = "Shot a\nA quay.", **extra) -> dict:
    return {"prompt": prompt, "duration": "4s", "aspect_ratio": "16:9", "resolution": "720p", "generate_audio": False, **extra}


def until_completed(fal: httpx.Client, answer: dict) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        body = fal.get(answer["status_url"]).json()
        if body["status"] == "COMPLETED":
            return body
        time.sleep(0.1)
    raise AssertionError("the request did not complete")


def test_the_unchanged_sdk_uploads_submits_polls_and_fetches_with_the_printed_settings(sim, tmp_path):
    (tmp_path / "keeper.png").write_bytes(png(1920, 1080, RED))
    env = {"PATH": "/usr/bin:/bin", **sim.fal_environment()}
    done = subprocess.run([sys.executable, "-c", SDK_SCRIPT, str(tmp_path / "keeper.png"), str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    # The upload went to fal-client's fixed CDN host, tunnelled here; its URL names that host.
    assert report["upload"].startswith("https://v3.fal.media/files/")
    routes = sim.stats()["requests_by_route"]
    assert routes["POST /storage/auth/token"] == 1 and routes["POST /files/upload"] == 1
    assert routes["POST /{endpoint_id}"] == 2 and routes["GET /{app}/requests/{request_id}"] == 2
    kling, veo = report["kling"], report["veo"]
    # The handle uses the URLs the submit gave, without the endpoint's sub-path.
    assert kling["status_url"] == f"{sim.fal_url}/fal-ai/kling-video/requests/{kling['request_id']}/status"
    assert kling["seen"][-1] == "Completed" and set(kling["seen"]) <= {"Queued", "InProgress", "Completed"}
    assert kling["metrics"]["inference_time"] > 0 and kling["logs"] and kling["logs"][0]["message"]
    for name, (size, seconds, audio) in {"kling": ((1920, 1080), 5, True), "veo": ((720, 1280), 4, False)}.items():
        info = probe(Path(report[name]["path"]))
        assert [(v["width"], v["height"]) for v in info["video"]] == [size], name
        assert abs(info["duration"] - seconds) < 0.1, name
        assert ("audio" in info) is audio, name  # sound only when asked
        assert report[name]["result"]["video"]["content_type"] == "video/mp4"
    # The uploaded image is the Kling clip's first frame.
    assert close_colours(colour_at(Path(kling["path"]), 0.1), RED)
    jobs = httpx.get(f"{sim.url}/_sim/jobs").json()["data"]  # counted with every other dialect's work
    assert sorted(j["id"] for j in jobs if j["dialect"] == "fal") == sorted([kling["request_id"], veo["request_id"]])


def test_refusals_in_fal_s_words(sim, fal):
    bad = fal.post(f"/{VEO}", json=veo_args(duration="5s", colour="red"))
    assert bad.status_code == 422 and "x-fal-request-id" in bad.headers
    detail = bad.json()["detail"]
    assert {(d["loc"][-1], d["type"]) for d in detail} == {("duration", "literal_error"), ("colour", "extra_forbidden")}
    assert "'4s', '6s', '8s'" in next(d["msg"] for d in detail if d["loc"][-1] == "duration")
    assert fal.post(f"/{VEO}", json={"duration": "4s"}).json()["detail"][0]["loc"] == ["body", "prompt"]
    assert fal.post(f"/{VEO}", json=veo_args(), headers={"Authorization": "Bearer x"}).status_code == 401
    assert fal.post("/fal-ai/no-such-model", json=veo_args()).status_code == 404
    remote = fal.post(f"/{KLING_I2V}", json={"prompt": "p", "duration": "5", "start_image_url": "https://example.com/a.png"})
    assert remote.status_code == 422 and remote.json()["detail"][0]["type"] == "file_download_error"  # it fetches nothing elsewhere
    sim.set_faults("429=1")
    limited = fal.post(f"/{VEO}", json=veo_args())
    assert limited.status_code == 429 and limited.json()["detail"] and limited.headers["retry-after"]
    sim.set_faults("500=1")
    own = fal.post(f"/{VEO}", json=veo_args())
    assert own.status_code == 500 and "x-fal-request-id" in own.headers  # fal-client does not resend this one
    sim.set_faults("502=1")
    ingress = fal.get("/fal-ai/veo3.1/requests/00000000-0000-0000-0000-000000000000/status")
    assert ingress.status_code == 502 and "nginx" in ingress.text and "x-fal-request-id" not in ingress.headers
    sim.set_faults("")
    assert sim.stats()["creates"] == 0  # nothing refused was queued


def test_a_stalled_answer_is_held_then_given(sim, fal):
    answer = submit(fal, VEO, veo_args("Shot stall"))
    sim.config.stall_seconds = 0.6
    sim.set_faults("stall=1")
    try:
        started = time.monotonic()
        held = fal.get(answer["status_url"])
        assert held.status_code in (200, 202) and time.monotonic() - started >= 0.6
        assert sim.stats()["faults_injected"]["stall"] == 1
    finally:
        sim.set_faults("")
        sim.config.stall_seconds = 30.0


def test_status_moves_from_202_to_200_and_a_cancelled_request_completes_with_an_error(sim, fal):
    first = submit(fal, VEO, veo_args("Shot c\nOne."))
    assert set(first) >= {"request_id", "response_url", "status_url", "cancel_url"}
    status = fal.get(first["status_url"])
    assert status.status_code == 202 and status.json()["status"] in ("IN_QUEUE", "IN_PROGRESS") and "logs" in status.json()
    assert fal.get(first["response_url"]).status_code == 400  # no result before it is done
    done = until_completed(fal, first)
    assert done["logs"] is None and done["metrics"]["inference_time"] > 0
    assert fal.get(first["status_url"]).status_code == 200
    assert fal.put(first["cancel_url"]).status_code == 400  # finished: too late to cancel
    second = submit(fal, VEO, veo_args("Shot c\nTwo."))
    cancelled = fal.put(second["cancel_url"])
    assert cancelled.status_code == 202 and cancelled.json() == {"status": "CANCELLATION_REQUESTED"}
    body = fal.get(second["status_url"]).json()
    assert body["status"] == "COMPLETED" and body["error_type"] == "request_cancelled"


def test_the_history_lists_finished_requests_with_their_inputs_page_by_page(sim, fal):
    # Three requests with one input: one render serves them (the history tells them apart by id).
    answers = [submit(fal, VEO, veo_args("Shot h\nThe same.", seed=7)) for _ in range(3)]
    params = {"endpoint_id": VEO, "expand": "payloads"}
    assert fal.get("/v1/models/requests/by-endpoint", params=params).json()["items"] == []  # none finished yet
    for answer in answers:
        until_completed(fal, answer)
    page = fal.get("/v1/models/requests/by-endpoint", params={**params, "limit": 2}).json()
    assert len(page["items"]) == 2 and page["has_more"] and base64.b64decode(page["next_cursor"])
    rest = fal.get("/v1/models/requests/by-endpoint", params={**params, "limit": 2, "cursor": page["next_cursor"]}).json()
    items = page["items"] + rest["items"]
    assert not rest["has_more"] and {i["request_id"] for i in items} == {a["request_id"] for a in answers}
    assert [i["ended_at"] for i in items] == sorted((i["ended_at"] for i in items), reverse=True)
    first = next(i for i in items if i["request_id"] == answers[0]["request_id"])
    assert first["json_input"] == veo_args("Shot h\nThe same.", seed=7) and first["status_code"] == 200
    assert first["json_output"]["video"]["url"].endswith("/output.mp4")
    bare = fal.get("/v1/models/requests/by-endpoint", params={"endpoint_id": VEO}).json()["items"]
    assert bare and all("json_input" not in i for i in bare)  # inputs only with expand=payloads
    later = fal.get("/v1/models/requests/by-endpoint", params={**params, "start": "2099-01-01T00:00:00Z"}).json()["items"]
    assert later == []
    sim.config.fal_history_lag_seconds = 60.0
    assert fal.get("/v1/models/requests/by-endpoint", params=params).json()["items"] == []  # the history lags
    sim.config.fal_history = "forbid"
    assert fal.get("/v1/models/requests/by-endpoint", params=params).status_code == 403
    assert fal.get("/v1/models/requests/by-endpoint", params=params, headers={"Authorization": ""}).status_code == 401


def test_prices_and_model_metadata(sim, fal):
    prices = fal.get("/v1/models/pricing", params={"endpoint_id": f"{VEO},{KLING_I2V}"}).json()["prices"]
    assert {p["endpoint_id"]: (p["unit_price"], p["unit"], p["currency"]) for p in prices} == {
        VEO: (0.40, "second", "USD"), KLING_I2V: (0.168, "second", "USD"),
    }
    sim.config.fal_prices = {VEO: 0.35}
    try:
        assert fal.get("/v1/models/pricing", params={"endpoint_id": VEO}).json()["prices"][0]["unit_price"] == 0.35
    finally:
        sim.config.fal_prices = {}
    models = {m["endpoint_id"]: m["metadata"] for m in fal.get("/v1/models", params={"endpoint_id": f"{VEO},{KLING_I2V}"}).json()["models"]}
    assert models[VEO]["status"] == "active" and models[KLING_I2V]["category"] == "image-to-video"


def test_the_proxy_tunnels_only_fal_s_storage_hosts(sim):
    proxy = sim.fal_proxy_url
    with httpx.Client(proxy=proxy, verify=ssl.create_default_context(cafile=sim.fal_ca_file)) as client:
        token = client.post("https://rest.fal.ai/storage/auth/token", params={"storage_type": "fal-cdn-v3"}, json={},
                            headers={"Authorization": "Key any"})
        assert token.status_code == 200 and token.json()["token_type"] == "Bearer"
        with pytest.raises(httpx.ProxyError):
            client.get("https://example.com/")
