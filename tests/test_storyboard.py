"""Storyboard validation: every problem names its field path, the value and what is allowed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from soraflow.errors import StoryboardError
from soraflow.storyboard import load_storyboard, parse_storyboard

SHOT = {"id": "a", "seconds": 8, "visual": "a lighthouse"}


def problems(data, **kw) -> list[str]:
    with pytest.raises(StoryboardError) as info:
        parse_storyboard(data, **kw)
    return [str(p) for p in info.value.problems]


def board(**over):
    return {"title": "t", "shots": [dict(SHOT)], **over}


def test_example_storyboard_loads(lighthouse):
    sb = load_storyboard(lighthouse)
    assert [s.id for s in sb.shots] == ["dawn", "keeper", "lamp"]
    assert sb.total_seconds == 28
    assert sb.reference_path(sb.shots[1]).is_file()


def test_unknown_key_names_path_and_allowed_keys():
    [p] = problems(board(shots=[{**SHOT, "colour": "red"}]))
    assert p.startswith("shots[0].colour: unknown key")
    assert "visual" in p and "transition" in p


def test_unknown_nested_key():
    [p] = problems(board(shots=[{**SHOT, "camera": {"movement": "static", "tilt": 3}}]))
    assert p.startswith("shots[0].camera.tilt: unknown key; allowed keys: framing, movement, speed")


def test_seconds_zero():
    [p] = problems(board(shots=[dict(SHOT), {**SHOT, "id": "b", "seconds": 0}]))
    assert p.startswith("shots[1].seconds: 0 is not allowed")


def test_seconds_not_reachable_names_clip_lengths_and_a_suggestion():
    [p] = problems(board(shots=[{**SHOT, "seconds": 10}]))
    assert p.startswith("shots[0].seconds: 10 cannot be made from sora-2 clip lengths 4, 8, 12 s")
    assert "e.g. 8" in p or "e.g. 12" in p


def test_size_not_offered_by_model():
    [p] = problems(board(shots=[{**SHOT, "size": "1792x1024"}]))
    assert p == "shots[0].size: '1792x1024' is not offered by sora-2; allowed: 720x1280, 1280x720"


def test_pro_sizes_allowed_on_pro():
    sb = parse_storyboard(board(model="sora-2-pro", size="1792x1024"))
    assert sb.size_of(sb.shots[0]) == "1792x1024"


def test_beyond_spec_values_need_the_setting():
    data = board(shots=[{**SHOT, "seconds": 20}], model="sora-2-pro", size="1920x1080")
    assert len(problems(data)) == 1  # 20 is reachable as 12+8, the 1080p size is not published
    sb = parse_storyboard(data, allow_beyond_spec=True)
    assert sb.shots[0].seconds == 20


def test_unknown_model_lists_models():
    [p] = problems(board(model="sora-3"))
    assert p.startswith("model: 'sora-3' is not a known model profile; known profiles: ")
    known = p.split("known profiles: ", 1)[1].split(", ")
    assert known == sorted(known)
    assert {"sora-2", "veo-3.1-generate-001", "kling-3.0-standard"} <= set(known)


def test_missing_reference_image(tmp_path):
    [p] = problems(board(shots=[{**SHOT, "input_reference": "nope.png"}]), base_dir=tmp_path)
    assert p.startswith("shots[0].input_reference: 'nope.png': no such file")


def test_no_shots():
    [p] = problems(board(shots=[]))
    assert p == "shots: no shots: a storyboard needs at least one shot"


def test_duplicate_ids():
    [p] = problems(board(shots=[dict(SHOT), dict(SHOT)]))
    assert p == "shots[1].id: 'a' is already used by shots[0]; shot ids must be unique"


def test_bad_camera_vocabulary_lists_allowed_values():
    [p] = problems(board(shots=[{**SHOT, "camera": {"movement": "spin"}}]))
    assert "shots[0].camera.movement: 'spin'" in p and "'pan_left'" in p


def test_all_problems_reported_together():
    ps = problems(board(shots=[{**SHOT, "seconds": 10}, {**SHOT, "id": "b", "size": "1x1"}]))
    assert {p.split(":")[0] for p in ps} == {"shots[0].seconds", "shots[1].size"}


def test_not_utf8(tmp_path: Path):
    f = tmp_path / "s.yaml"
    f.write_bytes(b"title: caf\xe9\nshots: []\n")
    with pytest.raises(StoryboardError, match="not UTF-8"):
        load_storyboard(f)


def test_not_yaml(tmp_path: Path):
    f = tmp_path / "s.yaml"
    f.write_text("title: [unclosed\nshots:\n  - id: a\n")
    with pytest.raises(StoryboardError, match=r"not valid YAML at line \d+"):
        load_storyboard(f)


def test_not_a_mapping(tmp_path: Path):
    f = tmp_path / "s.yaml"
    f.write_text("- just\n- a list\n")
    with pytest.raises(StoryboardError, match="top level must be a mapping"):
        load_storyboard(f)


def test_json_storyboard(tmp_path: Path):
    import json

    f = tmp_path / "s.json"
    f.write_text(json.dumps(board()))
    assert load_storyboard(f).title == "t"


def test_reference_resolves_next_to_file(tmp_path: Path, lighthouse):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "r.png").write_bytes((lighthouse.parent / "images" / "keeper.png").read_bytes())
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(board(shots=[{**SHOT, "input_reference": "img/r.png"}])))
    sb = load_storyboard(f)
    assert sb.reference_path(sb.shots[0]) == tmp_path / "img" / "r.png"


# --- hostile input: refused cleanly, naming the field, without reading or printing too much ---


def test_duplicate_keys_are_refused_naming_both_lines(tmp_path: Path):
    f = tmp_path / "s.yaml"
    f.write_text("title: t\nshots:\n  - id: a\n    seconds: 4\n    visual: v\n    seconds: 12\n")
    with pytest.raises(StoryboardError, match="'seconds' appears twice, on line 4 and on line 6"):
        load_storyboard(f)


def test_a_fifo_or_a_device_as_the_storyboard_is_refused(tmp_path: Path):
    fifo = tmp_path / "s.yaml"
    os.mkfifo(fifo)
    with pytest.raises(StoryboardError, match="FIFO"):
        load_storyboard(fifo)
    with pytest.raises(StoryboardError, match="character device"):
        load_storyboard("/dev/zero")


def test_every_text_field_is_bounded_and_long_values_are_shown_shortened():
    for field in ("lighting", "audio", "style", "model", "size"):
        ps = problems(board(shots=[{**SHOT, field: "x" * 5000}]))
        assert ps and ps[0].startswith(f"shots[0].{field}:"), ps
        assert len(ps[0]) < 300, ps[0]


def test_a_long_input_reference_is_refused_with_its_length(tmp_path: Path):
    ps = problems(board(shots=[{**SHOT, "input_reference": "a" * 5000 + ".png"}]), base_dir=tmp_path)
    assert ps[0].startswith("shots[0].input_reference:") and "at most 4096" in ps[0]
    ps = problems(board(shots=[{**SHOT, "input_reference": "a" * 300 + ".png"}]), base_dir=tmp_path)
    assert "each name in a path may have at most 255" in ps[0]


def test_a_reference_that_is_not_an_image_is_refused_without_showing_its_bytes(tmp_path: Path):
    (tmp_path / "keeper.png").symlink_to("/etc/passwd")
    ps = problems(board(shots=[{**SHOT, "input_reference": "keeper.png"}]), base_dir=tmp_path)
    assert ps == ["shots[0].input_reference: 'keeper.png': is not a PNG, JPEG or WebP image (its content does not start like one)"]
    os.mkfifo(tmp_path / "pipe.png")
    ps = problems(board(shots=[{**SHOT, "input_reference": "pipe.png"}]), base_dir=tmp_path)
    assert "FIFO" in ps[0]


def test_control_characters_are_escaped_in_messages():
    ps = problems(board(shots=[{**SHOT, "transition": "cut\x1b[2J"}]))
    assert "\x1b" not in ps[0] and "\\x1b" in ps[0]


def test_many_problems_are_capped():
    ps = problems(board(shots=[{**SHOT, "id": f"s{i}", "seconds": 5} for i in range(120)]))
    assert len(ps) == 51 and ps[-1] == "… and 70 more problems"


def test_lengths_no_split_can_reach_are_refused_at_once_even_beyond_spec():
    ps = problems(board(shots=[{**SHOT, "seconds": 597}]), allow_beyond_spec=True)
    assert ps[0].startswith("shots[0].seconds: 597 cannot be made from sora-2 clip lengths 4, 8, 12, 16, 20 s")
