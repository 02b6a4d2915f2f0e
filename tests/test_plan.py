"""Prompts and plans: deterministic text, split shots carry anchors, stable clip keys."""

from decimal import Decimal

from soraflow.models import builtin_catalog, route_endpoints
from soraflow.plan import clip_key, plan_storyboard
from soraflow.storyboard import load_storyboard

ENDPOINT = "http://127.0.0.1:1/v1"
CATALOG = builtin_catalog()
ROUTING = route_endpoints(CATALOG, {"OPENAI_BASE_URL": ENDPOINT, "OPENAI_API_KEY": "sk-test"})


def plan_of(sb):
    return plan_storyboard(sb, catalog=CATALOG, routing=ROUTING)


def test_plan_of_example(lighthouse):
    plan = plan_of(load_storyboard(lighthouse))
    assert [(c.shot_id, c.part, c.parts, c.seconds) for c in plan.clips] == [
        ("dawn", 1, 1, 8), ("keeper", 1, 2, 8), ("keeper", 2, 2, 8), ("lamp", 1, 1, 4),
    ]
    assert plan.total_usd == Decimal("2.80")
    assert plan.clips[1].transition == "fade" and plan.clips[2].transition == "cut"
    # the reference anchors the first part only; its hash is part of that clip's key
    assert plan.clips[1].reference_sha256 and plan.clips[2].reference_sha256 is None


def test_prompts_are_deterministic_and_carry_anchors(lighthouse):
    a = plan_of(load_storyboard(lighthouse))
    b = plan_of(load_storyboard(lighthouse))
    assert [c.prompt for c in a.clips] == [c.prompt for c in b.clips]
    assert [c.clip_key for c in a.clips] == [c.clip_key for c in b.clips]
    for c in a.clips:
        assert "navy wool coat; short grey beard; round glasses" in c.prompt
        assert "#1a2b3c" in c.prompt and "Style: cinematic" in c.prompt
    p1, p2 = a.clips[1].prompt, a.clips[2].prompt
    assert p1.startswith("Shot keeper — part 1 of 2") and p2.startswith("Shot keeper — part 2 of 2")
    assert "Continue seamlessly from the end of part 1" in p2
    assert 'Keeper: "Another storm is coming."' in p1 and 'Keeper: "The light must not go out."' in p2
    assert "Camera: wide shot, camera pans right, slow speed." in a.clips[0].prompt


def test_clip_key_covers_paid_inputs_only():
    base = dict(endpoint=ENDPOINT, model="sora-2", size="1280x720", seconds=8, prompt="p")
    k = clip_key(**base)
    assert k == clip_key(**base)
    for change in (dict(endpoint="https://other/v1"), dict(model="sora-2-pro"), dict(size="720x1280"),
                   dict(seconds=4), dict(prompt="q"), dict(reference_sha256="ab"), dict(remix_of="video_1")):
        assert clip_key(**{**base, **change}) != k


def test_endpoint_identity_never_holds_the_key(monkeypatch):
    from soraflow.settings import Settings

    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-123")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://user:pw@gw.example.com:8443/v1?api-key=zzz")
    s = Settings()
    route = route_endpoints(CATALOG, s.environment).route("openai")
    assert route.identity == "https://gw.example.com:8443/v1"
    assert "sk-secret-123" not in repr(s) and "sk-secret-123" not in s.model_dump_json()
    assert "sk-secret-123" not in route.model_dump_json() and "pw" not in route.model_dump_json()


def test_sound_on_request_follows_the_shot_and_keys_the_silent_clips_apart(tmp_path):
    """Veo makes sound only for shots that ask (audio: or dialogue); Sora always has it, and a
    clip with sound keeps the key it had before profiles could leave sound out."""
    from soraflow.storyboard import parse_storyboard

    shots = [
        {"id": "sea", "seconds": 4, "visual": "v", "audio": "surf"},
        {"id": "talk", "seconds": 4, "visual": "v", "dialogue": [{"speaker": "A", "line": "Hello."}]},
        {"id": "mute", "seconds": 4, "visual": "v"},
        {"id": "sora", "seconds": 4, "visual": "v", "model": "sora-2"},
    ]
    sb = parse_storyboard({"title": "t", "model": "veo-3.1-fast-generate-001", "shots": shots})
    plan = plan_storyboard(sb, catalog=CATALOG, routing=route_endpoints(CATALOG, {}))
    assert [c.audio for c in plan.clips] == [True, True, False, True]
    mute = plan.clips[2]
    fields = dict(endpoint=mute.route.identity, model=mute.model, size=mute.size, seconds=4, prompt=mute.prompt)
    assert mute.clip_key == clip_key(**fields, audio=False) != clip_key(**fields)
    # the v1 key material, unchanged for clips with sound
    import hashlib
    import json

    v1 = json.dumps({"v": 1, **fields, "reference_sha256": None, "remix_of": None}, sort_keys=True, ensure_ascii=False)
    assert clip_key(**fields) == hashlib.sha256(v1.encode()).hexdigest()[:32]
