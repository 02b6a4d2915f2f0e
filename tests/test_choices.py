"""Takes in the plan, the storyboard's takes/choose/review, and what a review's decision may say."""

from __future__ import annotations

from decimal import Decimal

import pytest

from soraflow.choices import decision_problems, record_decision
from soraflow.errors import StoryboardError
from soraflow.ledger import Ledger, Reviews
from soraflow.models import builtin_catalog, route_endpoints
from soraflow.plan import RecordedRetake, ReviewRecord, estimate_rows, plan_storyboard
from soraflow.review import ReviewDecision
from soraflow.storyboard import parse_storyboard

CATALOG = builtin_catalog()
ROUTING = route_endpoints(CATALOG, {}, simulate=True)
SHOTS = [
    {"id": "a", "seconds": 8, "visual": "A quay at dawn."},
    {"id": "b", "seconds": 16, "visual": "Gulls.", "continuity": "last_frame"},
    {"id": "v", "seconds": 8, "visual": "A red boat.", "model": "veo-3.1-generate-001"},
]
# The clip keys of this storyboard as soraflow computed them before takes existed (its main branch
# at b212ecb): take 1 must keep them, or every film and cache made before would be paid again.
KEYS_BEFORE_TAKES = ["92d32c733405b27f53c7a3b28accaf1f", "68ebd4cab4ed9291fbbac62bade2152a", "24ce51b5c8e49f6d38f17b1a36dcc311",
                     "cab678409665a5315e519f727535704a"]


def plan(record: ReviewRecord | None = None, **storyboard):
    sb = parse_storyboard({"title": "Keys", "shots": SHOTS, **storyboard}, catalog=CATALOG)
    return plan_storyboard(sb, catalog=CATALOG, routing=ROUTING, record=record)


def test_take_one_keeps_the_clip_keys_made_before_takes_existed():
    assert [c.clip_key for c in plan().clips] == KEYS_BEFORE_TAKES
    two = plan(takes=2)
    assert [c.clip_key for c in two.clips if c.take == 1] == KEYS_BEFORE_TAKES


def test_every_take_is_its_own_clip_priced_and_keyed_with_a_seed_where_the_model_takes_one():
    one, two = plan(), plan(takes=2)
    assert len(two.clips) == 2 * len(one.clips) and two.total_usd == 2 * one.total_usd
    assert len({c.clip_key for c in two.clips}) == len(two.clips)
    # a chained part follows the part before it in its own take
    b2 = [c for c in two.clips if c.shot_id == "b" and c.take == 2]
    assert b2[1].follows.clip_key == b2[0].clip_key and b2[1].label == "b 2/2 take 2"
    # Veo takes a seed: take 2 is sent with seed 2; Sora takes none
    assert {(c.shot_id, c.take, c.seed) for c in two.clips if c.shot_id in ("a", "v")} == {("a", 1, None), ("a", 2, None), ("v", 1, None), ("v", 2, 2)}
    assert [(c.shot_id, c.take) for c in two.film_clips] == [("a", 1), ("b", 1), ("b", 1), ("v", 1)]
    rows = estimate_rows(two)
    assert [r["take"] for r in rows] == ["1", "2", "1", "1", "2", "2", "1", "2"] and all("usd" in r for r in rows)


def test_choices_and_retakes_from_the_ledger_are_planned_and_the_storyboards_choose_wins():
    record = ReviewRecord(
        choices={"a": 3, "v": 2},
        retakes=(
            RecordedRetake(shot_id="a", take=3, prompt_change="the boat is red", seed=11),
            RecordedRetake(shot_id="v", take=3, prompt_change="", seed=9),
            RecordedRetake(shot_id="v", take=4, refused="refused: over the daily spend cap"),
        ),
    )
    p = plan(record, takes=2, shots=[{**SHOTS[0]}, {**SHOTS[1], "choose": 2}, {**SHOTS[2]}])
    a3 = next(c for c in p.clips if c.shot_id == "a" and c.take == 3)
    assert a3.retake and a3.seed is None and a3.prompt.count("the boat is red") == 1  # Sora: no seed to send
    v3 = next(c for c in p.clips if c.shot_id == "v" and c.take == 3)
    assert v3.seed == 9 and "the boat" not in v3.prompt
    assert [(c.shot_id, c.take) for c in p.refused] == [("v", 4)]
    assert p.chosen == {"a": 3, "b": 2, "v": 2} and p.fixed == {"b": 2}
    assert p.takes_of("a") == [1, 2, 3] and p.takes_of("v") == [1, 2, 3]
    # a retake keeps its number when the storyboard asks for more takes later: the new take is 4
    more = plan(ReviewRecord(retakes=(RecordedRetake(shot_id="a", take=3, prompt_change="red"),)), takes=3)
    assert more.takes_of("a") == [1, 2, 3, 4] and next(c for c in more.clips if c.shot_id == "a" and c.take == 3).retake
    # a choice naming a take no longer planned falls back to take 1
    assert plan(ReviewRecord(choices={"a": 5})).chosen["a"] == 1


@pytest.mark.parametrize(
    ("storyboard", "message"),
    [
        ({"shots": [{**SHOTS[0], "choose": 2}]}, "shots[0].choose: 2 is more than the shot has: 1 take(s) (the storyboard's takes); allowed: 1"),
        ({"shots": [{**SHOTS[0], "takes": 3, "choose": 4}]}, "shots[0].choose: 4 is more than the shot has: 3 take(s) (shots[0].takes); allowed: 1-3"),
        ({"takes": 0, "shots": SHOTS}, "takes: 0"),
        ({"shots": [{**SHOTS[0], "takes": 21}]}, "shots[0].takes: 21"),
        ({"review": "maybe", "shots": SHOTS}, "review"),
    ],
)
def test_takes_and_choose_are_checked_naming_the_field(storyboard, message):
    with pytest.raises(StoryboardError) as info:
        parse_storyboard({"title": "T", **storyboard}, catalog=CATALOG)
    assert message in str(info.value)


def test_a_decision_naming_an_unknown_shot_or_take_is_refused_naming_the_field():
    p = plan(takes=2, shots=[{**SHOTS[0]}, {**SHOTS[1], "choose": 2}, {**SHOTS[2]}])
    decision = ReviewDecision.model_validate({"shots": [
        {"shot": "zz", "keep": 1}, {"shot": "a", "keep": 3}, {"shot": "b", "keep": 1}, {"shot": "v"}, {"shot": "a", "keep": 1},
    ]})
    assert [str(problem) for problem in decision_problems(decision, p)] == [
        "shots[0].shot: 'zz' is not a shot of 'Keys'; shots: a, b, v",
        "shots[1].keep: 3 is not a take of shot 'a'; its takes: 1, 2",
        "shots[2].keep: the storyboard chooses take 2 of shot 'b' (its choose:); change the storyboard to keep another",
        "shots[3]: shot 'v': say keep (a take) or retake (a prompt change and/or a seed)",
        "shots[4].shot: 'a' is decided twice (also shots[1]); one decision per shot",
    ]
    assert decision_problems(ReviewDecision.model_validate({"approve": True, "shots": [{"shot": "a", "keep": 2}]}), p) == []


def test_a_decision_is_recorded_once_however_often_it_is_replayed(tmp_path):
    reviews = Reviews(Ledger(str(tmp_path / "ledger.sqlite")))
    p = plan(takes=2)
    decision = ReviewDecision.model_validate({"shots": [{"shot": "a", "keep": 2}, {"shot": "v", "retake": {"prompt_change": "at night", "seed": 5}}]})
    first = record_decision(decision, p, reviews, decision_ref="run-1:1", actor="test")
    again = record_decision(decision, p, reviews, decision_ref="run-1:1", actor="test")  # a resumed suspend replays it
    assert first.retakes == again.retakes == (("v", 3),)
    record = reviews.record("Keys")
    assert record.choices == {"a": 2}  # the retake becomes v's choice only once it is made (the flow's)
    assert record.retakes == (RecordedRetake(shot_id="v", take=3, prompt_change="at night", seed=5),)
    later = record_decision(ReviewDecision.model_validate({"shots": [{"shot": "v", "retake": {"seed": 6}}]}), plan(record, takes=2), reviews,
                            decision_ref="run-1:2", actor="test")
    assert later.retakes == (("v", 4),)
    reviews.settle_retake("Keys", "v", 4, "refused", "refused: over the cap")
    assert plan(reviews.record("Keys"), takes=2).total_usd == p.total_usd + Decimal("3.20")  # v's take 3 only


def test_a_fal_model_whose_arguments_take_a_seed_gets_one_per_take_and_one_without_gets_none():
    shots = [{"id": "s", "seconds": 4, "visual": "A boat.", "model": "seedance-2.0"},
             {"id": "k", "seconds": 4, "visual": "A quay.", "model": "kling-3.0-standard"}]
    sb = parse_storyboard({"title": "Fal", "takes": 2, "shots": shots}, catalog=CATALOG)
    p = plan_storyboard(sb, catalog=CATALOG, routing=ROUTING)
    assert [(c.shot_id, c.take, c.seed) for c in p.clips] == [("s", 1, None), ("s", 2, 2), ("k", 1, None), ("k", 2, None)]
