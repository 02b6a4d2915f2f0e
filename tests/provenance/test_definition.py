"""The manifest definition from a plan: every clip an ingredient with its facts, an extended clip
an input of its extension, prompts only when the storyboard opts in, no credential anywhere."""

from __future__ import annotations

import json
from pathlib import Path

from soraflow.models import builtin_catalog, route_endpoints
from soraflow.plan import RecordedRetake, ReviewRecord, plan_storyboard
from soraflow.provenance import Stitching, film_clips, film_definition
from soraflow.provenance.definition import CLIP_FIELDS, TRAINED_ALGORITHMIC_MEDIA, edited_action, ingredient
from soraflow.storyboard import parse_storyboard

CATALOG = builtin_catalog()
KEY = "sk-canary-0123456789abcdef"
ROUTING = route_endpoints(CATALOG, {"OPENAI_BASE_URL": "http://user:pa55word-canary@gateway.test/v1", "OPENAI_API_KEY": KEY, "GOOGLE_API_KEY": KEY})
BOARD = {
    "title": "Harbour",
    "model": "sora-2",
    "shots": [
        {"id": "quay", "seconds": 4, "visual": "A wet quay at night."},
        {"id": "sea", "seconds": 15, "visual": "The sea rises.", "model": "veo-3.1-generate-001", "continuity": "extend"},
    ],
}


def plan(**provenance):
    return plan_storyboard(parse_storyboard({**BOARD, "provenance": provenance}), catalog=CATALOG, routing=ROUTING)


def files(p) -> dict:
    return {c.clip_key: (Path(f"/clips/{c.shot_id}-{c.part}.mp4"), f"{c.part:064x}") for c in p.clips}


def test_every_clip_is_an_ingredient_with_its_facts_and_an_extended_clip_is_an_input_of_its_extension():
    p = plan()
    clips = film_clips(p, files(p))
    assert [(c.shot_id, c.part, c.model, c.endpoint, c.in_film) for c in clips] == [
        ("quay", 1, "sora-2", "openai", True),
        ("sea", 1, "veo-3.1-generate-001", "vertex", False),  # the extension plays it, so it is not placed twice
        ("sea", 2, "veo-3.1-generate-001", "vertex", True),
    ]
    ingredients = [ingredient(c) for c in clips]
    assert [i["relationship"] for i in ingredients] == ["componentOf", "inputTo", "componentOf"]
    assert ingredients[0]["metadata"][CLIP_FIELDS] | {"clip_key": None} == {
        "shot_id": "quay", "part": 1, "parts": 1, "profile": "sora-2", "model": "sora-2", "endpoint": "openai",
        "endpoint_identity": "http://gateway.test/v1", "size": "1280x720", "seconds": 4, "sha256": f"{1:064x}", "clip_key": None, "take": 1, "retake": False,
    }
    definition = film_definition(p.title, clips)
    created, placed = definition["assertions"][0]["data"]["actions"]
    assert (created["action"], created["digitalSourceType"]) == ("c2pa.created", TRAINED_ALGORITHMIC_MEDIA)
    assert placed["parameters"]["ingredientIds"] == [clips[0].ingredient_id, clips[2].ingredient_id]
    edited = edited_action(Stitching("normalize", "1280x720", transitions=["fade into sea"], subtitles="burned in", fitted=["shot 'sea': ..."]))
    assert edited["description"] == (
        "clips joined in storyboard order, re-encoded to 1280x720; transitions: fade into sea; dialogue as subtitles (burned in); "
        "1 shot(s) fitted into 1280x720; chapters per shot"
    )
    everything = json.dumps([definition, ingredients, edited])
    assert KEY not in everything and "pa55word-canary" not in everything and "The sea rises" not in everything


def test_prompts_are_in_the_ingredients_only_when_the_storyboard_opts_in():
    p = plan(include_prompts=True)
    prompts = [ingredient(c)["metadata"][CLIP_FIELDS].get("prompt") for c in film_clips(p, files(p))]
    assert prompts == [c.prompt for c in p.clips] and "A wet quay at night." in prompts[0]
    assert all("prompt" not in ingredient(c)["metadata"][CLIP_FIELDS] for c in film_clips(plan(), files(plan())))


def test_the_ingredients_are_each_shots_chosen_take_and_a_retake_says_so():
    board = {**BOARD, "takes": 2}  # quay: 1 clip a take; sea: 2 clips a take (an extension)
    record = ReviewRecord(choices={"quay": 3, "sea": 2}, retakes=(RecordedRetake(shot_id="quay", take=3, prompt_change="Wetter."),))
    p = plan_storyboard(parse_storyboard(board), catalog=CATALOG, routing=ROUTING, record=record)
    assert len(p.clips) == 3 + 4  # every take planned (and in manifest.json); the film is made from the chosen ones
    clips = film_clips(p, files(p))
    assert [(c.shot_id, c.take, c.retake, c.part, c.in_film) for c in clips] == [
        ("quay", 3, True, 1, True),
        ("sea", 2, False, 1, False),
        ("sea", 2, False, 2, True),
    ]
    assert [c.clip_key for c in clips] == [c.clip_key for c in p.chosen_clips]
    facts = [ingredient(c)["metadata"][CLIP_FIELDS] for c in clips]
    assert [(f["shot_id"], f["take"], f["retake"]) for f in facts] == [("quay", 3, True), ("sea", 2, False), ("sea", 2, False)]
    assert ingredient(clips[0])["description"].startswith("shot quay take 3 (a retake) part 1 of 1: 4 s by sora-2")
    placed = film_definition(p.title, clips)["assertions"][0]["data"]["actions"][1]
    assert placed["parameters"]["ingredientIds"] == [clips[0].ingredient_id, clips[2].ingredient_id]
    assert placed["description"] == "2 generated clips placed in storyboard order"
