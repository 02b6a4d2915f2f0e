"""The run form: a typed storyboard the Prefect UI can draw, equal to the storyboard format."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from soraflow.flows.form import EXAMPLE_STORYBOARD, CameraForm, CharacterForm, RenderRequest, ShotForm, StoryboardForm
from soraflow.models import builtin_catalog, route_endpoints
from soraflow.plan import plan_storyboard
from soraflow.storyboard import Camera, Character, Shot, Storyboard, parse_storyboard

CATALOG = builtin_catalog()
ROUTING = route_endpoints(CATALOG, {}, simulate=True)  # every endpoint, Sora and Veo alike

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize(
    ("core", "form"),
    [(Storyboard, StoryboardForm), (Shot, ShotForm), (Camera, CameraForm), (Character, CharacterForm)],
    ids=lambda m: m.__name__,
)
def test_the_form_has_every_field_of_the_storyboard_format(core: type[BaseModel], form: type[BaseModel]):
    """A field added to the storyboard format must be added to its form twin (flows/form.py)."""
    user_fields = {name for name, info in core.model_fields.items() if not info.exclude}
    assert set(form.model_fields) == user_fields


def clip_keys(data: dict, base_dir: Path) -> list[str]:
    sb = parse_storyboard(data, base_dir=base_dir, catalog=CATALOG)
    return [c.clip_key for c in plan_storyboard(sb, catalog=CATALOG, routing=ROUTING).clips]


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*/storyboard.yaml")), ids=lambda p: p.parent.name)
def test_a_storyboard_in_the_form_makes_the_same_clips_as_the_file(example: Path):
    data = yaml.safe_load(example.read_text())
    form = StoryboardForm.model_validate(data)
    as_written = parse_storyboard(data, base_dir=example.parent, catalog=CATALOG)
    assert parse_storyboard(form.to_storyboard_data(), base_dir=example.parent, catalog=CATALOG) == as_written
    assert clip_keys(form.to_storyboard_data(), example.parent) == clip_keys(data, example.parent)


def test_what_the_form_leaves_empty_is_left_out():
    form = StoryboardForm(title="T", shots=[ShotForm(id="a", seconds=4, visual="v", camera=CameraForm(speed="slow"))])
    assert form.to_storyboard_data() == {
        "title": "T", "model": "sora-2", "size": "1280x720", "transition": "cut", "takes": 1, "review": False,
        "shots": [{"id": "a", "seconds": 4, "visual": "v", "camera": {"speed": "slow"}, "continuity": "anchors"}],
        "provenance": {"required": False, "include_prompts": False},
    }
    assert parse_storyboard(form.to_storyboard_data()).shots[0].camera == Camera(speed="slow")


def test_the_form_opens_on_a_storyboard_that_renders():
    request = RenderRequest()
    assert request.storyboard == EXAMPLE_STORYBOARD
    path, inline = request.storyboard_source()
    assert path is None and parse_storyboard(inline).title == "A lighthouse at dawn"
    assert RenderRequest(storyboard_path="films/a.yaml").storyboard_source() == ("films/a.yaml", None)


def test_the_form_refuses_what_the_format_refuses():
    with pytest.raises(ValidationError):
        ShotForm(id="no spaces", seconds=4, visual="v")
    with pytest.raises(ValidationError):
        StoryboardForm(title="T", size="big", shots=[ShotForm(id="a", seconds=4, visual="v")])
    with pytest.raises(ValidationError):
        StoryboardForm.model_validate({"title": "T", "shots": [{"id": "a", "seconds": 4, "visual": "v", "colour": "red"}]})


def nullable_fields(schema: dict) -> list[str]:
    """Every property, anywhere in the schema, that the UI would show behind a value-or-null picker."""
    found = []
    for name, model in schema.get("definitions", {}).items():
        for field, spec in model.get("properties", {}).items():
            if any(option.get("type") == "null" for option in spec.get("anyOf", [])):
                found.append(f"{name}.{field}")
    return found


def test_the_run_form_schema_has_no_value_or_null_pickers_where_a_default_exists():
    from prefect.utilities.callables import parameter_schema

    from soraflow.flows.render import render_storyboard

    schema = parameter_schema(render_storyboard).model_dump()
    assert nullable_fields(schema) == []
    request = schema["definitions"]["RenderRequest"]["properties"]
    assert request["storyboard"]["default"]["shots"][0]["id"] == "dawn"
    for name, model in schema["definitions"].items():
        for field, spec in model["properties"].items():
            # Every field says what it is for, but a sub-form (it has its own) and a dialogue line.
            assert spec.get("description") or "$ref" in spec or name == "DialogueLine", f"{name}.{field} has no description"
    assert "developer" not in str(schema).lower() and "pydantic" not in str(schema).lower()


def test_a_cast_written_in_the_form_is_the_cast_of_the_file():
    data = {
        "title": "Cast",
        "characters": {"keeper": {"anchors": ["navy wool coat", "round glasses"], "reference": "images/keeper.png"}},
        "shots": [
            {"id": "stairs", "seconds": 4, "visual": "The keeper climbs the stairs.", "cast": ["keeper"]},
            {"id": "sea", "seconds": 4, "visual": "The sea at night."},
        ],
    }
    base = EXAMPLES / "lighthouse"
    form = StoryboardForm.model_validate(data)
    assert parse_storyboard(form.to_storyboard_data(), base_dir=base, catalog=CATALOG) == parse_storyboard(data, base_dir=base, catalog=CATALOG)
    assert clip_keys(form.to_storyboard_data(), base) == clip_keys(data, base)


def test_the_budget_opens_as_a_plain_optional_number():
    """Prefect's UI draws ``float | None`` as a value-or-null picker: the budget is a number field
    that opens empty, and an empty number field sends nothing, which is no budget."""
    from prefect.utilities.callables import parameter_schema
    from prefect.utilities.schema_tools import ValidationError as SchemaError
    from prefect.utilities.schema_tools import validate

    from soraflow.flows.render import render_storyboard

    schema = parameter_schema(render_storyboard).model_dump()
    budget = schema["definitions"]["RenderRequest"]["properties"]["budget_usd"]
    assert {k: v for k, v in budget.items() if k not in ("title", "description")} == {"type": "number", "minimum": 0}
    assert "budget_usd" not in schema["properties"]["request"]["default"]  # the form opens on an empty field
    assert "budget_usd" not in schema["definitions"]["RenderRequest"].get("required", [])

    # What the UI sends, checked as the server checks a run's parameters (enforce_parameter_schema),
    # then read by the flow's own parameter model.
    as_sent = schema["properties"]["request"]["default"]
    validate({"request": as_sent}, schema, raise_on_error=True)
    assert RenderRequest.model_validate(as_sent).budget_usd is None
    validate({"request": {**as_sent, "budget_usd": 2.5}}, schema, raise_on_error=True)
    assert RenderRequest.model_validate({**as_sent, "budget_usd": 2.5}).budget_usd == 2.5
    with pytest.raises(SchemaError, match="budget_usd"):
        validate({"request": {**as_sent, "budget_usd": -1}}, schema, raise_on_error=True)
    with pytest.raises(ValidationError):
        RenderRequest(budget_usd=-1)
    # Python callers still say "no budget" with None; a budget given is kept in the request's data.
    assert RenderRequest(budget_usd=None).model_dump().keys() == RenderRequest().model_dump().keys()
    assert RenderRequest(budget_usd=0).model_dump()["budget_usd"] == 0
