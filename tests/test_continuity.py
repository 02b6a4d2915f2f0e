"""Continuity in the plan: a cast's anchors go only where it is cast, chained parts carry their
source's key, and what a model cannot do is refused at validation naming what it allows."""

from __future__ import annotations

import pytest

from soraflow.errors import StoryboardError
from soraflow.models import builtin_catalog, route_endpoints
from soraflow.plan import plan_storyboard
from soraflow.storyboard import parse_storyboard

CATALOG = builtin_catalog()
ROUTING = route_endpoints(CATALOG, {"OPENAI_BASE_URL": "http://127.0.0.1:1/v1", "OPENAI_API_KEY": "sk-test",
                                     "GOOGLE_VERTEX_BASE_URL": "http://127.0.0.1:1", "GOOGLE_API_KEY": "k"})
KEEPER = ["navy wool coat", "short grey beard", "round glasses"]
LENA = ["red raincoat", "braided black hair"]


def plan_of(data: dict, tmp_path=None):
    sb = parse_storyboard(data, base_dir=tmp_path or __import__("pathlib").Path("."))
    return plan_storyboard(sb, catalog=CATALOG, routing=ROUTING)


def board(*shots, **top) -> dict:
    return {"title": "T", "shots": list(shots), **top}


def refusal(data: dict) -> list[tuple[str, str]]:
    with pytest.raises(StoryboardError) as info:
        parse_storyboard(data)
    return [(p.path, p.message) for p in info.value.problems]


def test_cast_of_two_across_four_shots_each_prompt_holds_exactly_its_cast():
    cast = {"keeper": {"anchors": KEEPER}, "lena": {"anchors": LENA}}
    shots = [
        {"id": "sea", "seconds": 4, "visual": "Waves under a grey sky."},
        {"id": "stairs", "seconds": 8, "visual": "The keeper climbs.", "cast": ["keeper"]},
        {"id": "door", "seconds": 4, "visual": "Lena knocks.", "cast": ["lena"]},
        {"id": "meet", "seconds": 16, "visual": "They meet at the lamp.", "cast": ["lena", "keeper"]},
    ]
    plan = plan_of(board(*shots, characters=cast))
    every = set(KEEPER) | set(LENA)
    expected = {"sea": set(), "stairs": set(KEEPER), "door": set(LENA), "meet": every}
    assert len(plan.clips) == 5
    for clip in plan.clips:
        held = {a for a in every if a in clip.prompt}
        assert held == expected[clip.shot_id], clip.label
    meet = plan.clips[-1].prompt
    assert "Character lena (keep identical wherever lena appears): red raincoat; braided black hair" in meet
    assert meet.index("Character lena") < meet.index("Character keeper")  # the shot's order, deterministic


def test_old_identity_anchors_still_go_into_every_clip():
    plan = plan_of(board({"id": "a", "seconds": 4, "visual": "x"}, identity_anchors=["blue scarf"]))
    assert "Continuity (keep identical in every shot): blue scarf" in plan.clips[0].prompt


def test_unknown_cast_and_impossible_continuity_are_refused_naming_what_is_allowed():
    problems = refusal(board(
        {"id": "a", "seconds": 8, "visual": "x", "cast": ["ghost"]},
        {"id": "b", "seconds": 16, "visual": "y", "continuity": "last_frame", "model": "veo-3.1-fast-generate-001"},
        {"id": "c", "seconds": 8, "visual": "z", "remix_of": "b"},
        {"id": "d", "seconds": 8, "visual": "z", "remix_of": "nowhere"},
        characters={"keeper": {"anchors": KEEPER}},
    ))
    fields = dict(problems)
    assert "'ghost' is not a character; characters: keeper" in fields["shots[0].cast[0]"]
    assert "shots[1].continuity" not in fields  # Veo takes a first frame
    assert "shot 'b' is not one clip of its own" in fields["shots[2].remix_of"] or "keeps its source" in fields["shots[2].remix_of"]
    assert "'nowhere' is not an earlier shot; earlier shots: a, b, c" in fields["shots[3].remix_of"]


def test_a_profile_without_the_input_refuses_the_continuity(tmp_path, monkeypatch):
    models = tmp_path / "models.yaml"
    models.write_text("models:\n  plain: {like: sora-2, inputs: {first_frame: false, remix: false, extension: false}}\n")
    from soraflow.models import load_catalog

    catalog = load_catalog(models)
    with pytest.raises(StoryboardError) as info:
        parse_storyboard(board(
            {"id": "a", "seconds": 16, "visual": "x", "continuity": "last_frame"},
            {"id": "b", "seconds": 16, "visual": "x", "continuity": "extend"},
            {"id": "c", "seconds": 8, "visual": "x"},
            {"id": "d", "seconds": 8, "visual": "x", "remix_of": "c"},
            model="plain",
        ), catalog=catalog)
    fields = {p.path: p.message for p in info.value.problems}
    assert fields["shots[0].continuity"] == "'last_frame' needs a model that takes a first-frame image; plain allows: anchors"
    assert fields["shots[1].continuity"] == "'extend' needs a model that takes extensions; plain allows: anchors"
    assert "plain makes no remixes" in fields["shots[3].remix_of"]


def test_chained_parts_carry_their_predecessors_key():
    veo = "veo-3.1-fast-generate-001"
    plan = plan_of(board({"id": "s", "seconds": 24, "visual": "A long climb.", "continuity": "last_frame"}, model=veo))
    a, b, c = plan.clips
    assert a.follows is None and b.follows.clip_key == a.clip_key and c.follows.clip_key == b.clip_key
    assert {b.follows.kind, c.follows.kind} == {"last_frame"}
    assert "The opening frame is the last frame of part 2" in c.prompt
    anchors = plan_of(board({"id": "s", "seconds": 24, "visual": "A long climb."}, model=veo))
    # same prompts but for the continuity line; the chain makes other keys, and a longer wall time
    assert anchors.clips[0].clip_key == a.clip_key
    assert anchors.clips[1].clip_key != b.clip_key
    assert plan.longest_chain_seconds == 3 * anchors.longest_chain_seconds


def test_extend_plays_the_whole_shot_in_its_last_clip_and_prices_generated_seconds():
    plan = plan_of(board({"id": "s", "seconds": 24, "visual": "A long climb.", "continuity": "extend"}))
    assert [(c.seconds, c.job_seconds, c.in_film, c.follows and c.follows.kind) for c in plan.clips] == [
        (12, 12, False, None), (12, 24, True, "extend"),
    ]
    assert plan.total_seconds == 24 and plan.total_usd == 24 * CATALOG.profile("sora-2").price("1280x720", 1)
    assert [c.label for c in plan.film_clips] == ["s 2/2"]


def test_veo_extends_a_first_clip_by_seven_second_steps_up_to_37_seconds():
    veo = "veo-3.1-generate-001"
    plan = plan_of(board({"id": "s", "seconds": 22, "visual": "A long climb.", "continuity": "extend"}, model=veo))
    assert [(c.seconds, c.job_seconds, c.in_film, c.follows and c.follows.kind) for c in plan.clips] == [
        (8, 8, False, None), (7, 15, False, "extend"), (7, 22, True, "extend"),
    ]
    assert plan.total_usd == 22 * CATALOG.profile(veo).price("1280x720", 1, audio=False)
    assert [c.follows.clip_key for c in plan.clips[1:]] == [c.clip_key for c in plan.clips[:2]]
    # an anchors shot of the same length is split as before (the 7 s steps are extensions only)
    assert [c.seconds for c in plan_of(board({"id": "s", "seconds": 16, "visual": "x"}, model=veo)).clips] == [8, 8]
    fields = dict(refusal(board(
        {"id": "a", "seconds": 38, "visual": "x", "continuity": "extend"},
        {"id": "b", "seconds": 14, "visual": "x", "continuity": "extend", "size": "1920x1080"},
        model=veo,
    )))
    assert fields["shots[0].seconds"] == (
        "38 cannot be made by extension with veo-3.1-generate-001: a first clip of 4, 6, 8 s, then extensions of 7 s, "
        "37 s at most (e.g. 36)"
    )
    assert "a first clip of 8 s, then extensions of 7 s" in fields["shots[1].seconds"] and "(e.g. 15)" in fields["shots[1].seconds"]


def test_remix_is_keyed_by_its_source_clip():
    plan = plan_of(board({"id": "a", "seconds": 8, "visual": "Day."}, {"id": "b", "seconds": 8, "visual": "Night.", "remix_of": "a"}))
    a, b = plan.clips
    assert b.follows.kind == "remix" and b.follows.clip_key == a.clip_key
    other = plan_of(board({"id": "a", "seconds": 8, "visual": "Dawn."}, {"id": "b", "seconds": 8, "visual": "Night.", "remix_of": "a"}))
    assert other.clips[1].clip_key != b.clip_key  # another source, another remix
