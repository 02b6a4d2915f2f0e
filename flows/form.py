"""The run form of ``render-storyboard``: what the Prefect UI shows when someone clicks Run.

Prefect draws a flow's form from the JSON schema of its parameters. The storyboard model of the
core (``soraflow.storyboard.Storyboard``) is made for files: its optional fields are ``None``
until given, which a form shows as a type picker (a value, or null) in front of every field.
``StoryboardForm`` is its twin for the form: the same fields, each optional one opening on a
plain value ("" = not given), choices as drop-downs, patterns the UI checks as you type, and
text for people. ``to_storyboard_data()`` turns it back into the storyboard format, leaving out
what was not given, so a storyboard written in the form and the same one in a file make the
same prompts, the same clip keys, and the same film; the full validation (models, sizes,
lengths, with field paths) is the core's, as for a file. A test keeps the twins' fields equal.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from soraflow.storyboard import MAX_TAKES, DialogueLine

_NOT_GIVEN = ""
_NO_NUMBER = 0  # a number field left at 0 is not given (takes, choose)


class _Form(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CameraForm(_Form):
    """How the camera moves and frames the shot. Leave all three empty to say nothing about the camera."""

    movement: Literal["", "static", "pan_left", "pan_right", "zoom_in", "zoom_out", "track"] = Field(
        default="", title="Movement", description="Empty: static, when speed or framing is given."
    )
    speed: Literal["", "slow", "medium", "fast"] = Field(default="", title="Speed", description="Empty: medium.")
    framing: Literal["", "wide", "medium", "close-up", "extreme_close-up"] = Field(
        default="", title="Framing", description="Empty: medium."
    )


class CharacterForm(_Form):
    """One member of the cast: what must look the same wherever the character appears."""

    anchors: list[str] = Field(
        min_length=1, max_length=20, title="Anchors", description="What must stay the same: a navy wool coat, a grey beard, round glasses."
    )
    reference: str = Field(
        default=_NOT_GIVEN, max_length=4096, title="Reference image", description="A PNG/JPEG/WebP of the character on the worker. Empty: none."
    )


class ProvenanceForm(_Form):
    """The film's C2PA manifest (Content Credentials): signed by the worker's configured certificate."""

    required: bool = Field(
        default=False, title="Signature required", description="Refuse to render, before paying, when the worker has no usable signer."
    )
    include_prompts: bool = Field(
        default=False, title="Prompts in the manifest", description="Put each clip's prompt into the film's signed manifest (off: only its hash is kept in manifest.json)."
    )


class ShotForm(_Form):
    """One shot of the film. Shots longer than one clip are made of several clips, chained."""

    id: str = Field(
        title="Shot id",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
        description="A short name: letters, digits, - and _ (it names the clip, the chapter and the contact sheet tile).",
    )
    seconds: int = Field(
        title="Seconds", gt=0, le=600, description="Length of the shot: a sum of the model's clip lengths (sora-2: 4, 8, 12)."
    )
    visual: str = Field(title="What we see", min_length=1, max_length=4000, description="The picture, in plain words.")
    camera: CameraForm = Field(default_factory=CameraForm, title="Camera")
    lighting: str = Field(default=_NOT_GIVEN, max_length=1000, title="Lighting", description="e.g. golden hour. Empty: not said.")
    audio: str = Field(default=_NOT_GIVEN, max_length=1000, title="Sound", description="e.g. gulls, distant surf. Empty: not said.")
    dialogue: list[DialogueLine] = Field(
        default_factory=list, max_length=50, title="Dialogue", description="Lines spoken in this shot, in order (also the film's subtitles)."
    )
    input_reference: str = Field(
        default=_NOT_GIVEN,
        max_length=4096,
        title="Reference image",
        description="A PNG/JPEG/WebP file on the worker that the shot starts from (scaled and cropped to the clip size). Empty: none.",
    )
    cast: list[str] = Field(
        default_factory=list, max_length=20, title="Cast", description="Characters in this shot (names from the storyboard's cast): only their anchors go into its prompt."
    )
    continuity: Literal["anchors", "last_frame", "extend"] = Field(
        default="anchors",
        title="Continuity",
        description="How the parts of a long shot hold together: anchors in every prompt, each part starting from the last "
        "frame of the one before, or extending it (what the model supports).",
    )
    remix_of: str = Field(
        default=_NOT_GIVEN, max_length=64, title="Remix of", description="A shot id: a new take of that shot's clip, with this shot's prompt. Empty: none."
    )
    model: str = Field(default=_NOT_GIVEN, max_length=100, title="Model", description="Empty: the storyboard's model.")
    size: str = Field(
        default=_NOT_GIVEN, pattern=r"^(\d{2,5}x\d{2,5})?$", title="Clip size", description="WIDTHxHEIGHT. Empty: the storyboard's size."
    )
    style: str = Field(default=_NOT_GIVEN, max_length=1000, title="Style", description="Empty: the storyboard's style.")
    transition: Literal["", "cut", "crossfade", "fade"] = Field(
        default="", title="Transition into this shot", description="Empty: the storyboard's transition."
    )
    takes: int = Field(
        default=_NO_NUMBER, ge=0, le=MAX_TAKES, title="Takes",
        description="How many takes of this shot to generate (each is paid). 0: the storyboard's takes.",
    )
    choose: int = Field(
        default=_NO_NUMBER, ge=0, title="Choose take",
        description="The take the film uses. 0: the review's choice, else take 1.",
    )


class StoryboardForm(_Form):
    """The film to make, shot by shot: the storyboard format of soraflow, as a form."""

    title: str = Field(title="Title", min_length=1, max_length=200, description="The film's title (it names the stored files).")
    model: str = Field(
        default="sora-2", min_length=1, max_length=100, title="Model", description="The video model of every shot unless a shot names another."
    )
    size: str = Field(
        default="1280x720",
        pattern=r"^\d{2,5}x\d{2,5}$",
        title="Film size",
        description="WIDTHxHEIGHT of the film, and of every clip unless a shot says otherwise (sora-2: 1280x720 or 720x1280).",
    )
    style: str = Field(default=_NOT_GIVEN, max_length=1000, title="Style", description="realistic, cinematic, anime, or any words. Empty: not said.")
    identity_anchors: list[str] = Field(
        default_factory=list,
        max_length=20,
        title="Identity anchors",
        description="Details that must look the same in every shot (a coat, a beard, round glasses).",
    )
    characters: dict[str, CharacterForm] = Field(
        default_factory=dict,
        max_length=20,
        title="Cast",
        description='Characters by name, e.g. {"keeper": {"anchors": ["navy wool coat"]}}: their anchors go only into the shots that cast them.',
    )
    palette: list[str] = Field(
        default_factory=list, max_length=16, title="Palette", description="Colours like #1a2b3c, carried into every prompt."
    )
    transition: Literal["cut", "crossfade", "fade"] = Field(default="cut", title="Transition", description="Between shots, unless a shot says otherwise.")
    takes: int = Field(
        default=1, ge=1, le=MAX_TAKES, title="Takes",
        description="How many takes of every shot to generate, unless a shot says otherwise. Each take is paid for.",
    )
    review: bool = Field(
        default=False, title="Review before stitching",
        description="Stop once every take is stored, to choose takes or ask for retakes (here, or on the page `soraflow review` serves).",
    )
    shots: list[ShotForm] = Field(min_length=1, max_length=500, title="Shots", description="The shots, in film order.")
    provenance: ProvenanceForm = Field(default_factory=ProvenanceForm, title="Provenance", description="The film's signed C2PA manifest.")

    def to_storyboard_data(self) -> dict:
        """The storyboard format (what a YAML file holds), without what was left empty."""
        data = _given(self.model_dump(mode="json"))
        for shot in data["shots"]:  # a number left at 0 is "not given"
            for name in ("takes", "choose"):
                if shot.get(name) == _NO_NUMBER:
                    del shot[name]
        return data


def _given(value):
    """Drop what the form leaves empty: "" fields, empty lists and empty mappings."""
    if isinstance(value, dict):
        kept = {k: _given(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (_NOT_GIVEN, [], {})}
    if isinstance(value, list):
        return [_given(v) for v in value]
    return value


EXAMPLE_STORYBOARD = StoryboardForm(
    title="A lighthouse at dawn",
    shots=[
        ShotForm(
            id="dawn",
            seconds=4,
            visual="A white lighthouse on a cliff at dawn, waves breaking below.",
            camera=CameraForm(movement="pan_right", speed="slow", framing="wide"),
            lighting="golden hour",
            audio="gulls, distant surf",
        )
    ],
)


class RenderRequest(BaseModel):
    """What to render, and where the film goes."""

    model_config = ConfigDict(extra="forbid")

    storyboard: StoryboardForm = Field(
        default=EXAMPLE_STORYBOARD,  # pydantic copies it for every request
        title="Storyboard",
        description="The film, written here shot by shot. Not used when a storyboard file is given below.",
    )
    storyboard_path: str = Field(
        default=_NOT_GIVEN,
        title="Storyboard file",
        description="Or: a storyboard file (YAML or JSON) on the worker. A relative path starts in the worker's service directory.",
    )
    out_dir: str = Field(
        default="out",
        title="Output folder",
        description="Where film.mp4, contact_sheet.png and manifest.json go, on the worker (relative: in its service directory).",
    )
    storage: str = Field(
        default=_NOT_GIVEN,
        title="Storage",
        description="Where clips and outputs are also kept: s3://bucket/prefix or file:///path. Empty: the output folder.",
    )
    # A plain number field, like the other optional fields: the schema says "number" alone, with no
    # default, and a request without a budget leaves the field out of its data (so out of the form's
    # defaults). Prefect's UI draws ``float | None`` as a value-or-null picker, and an empty number
    # field sends nothing, which is "no budget" here. Python callers may still pass None.
    budget_usd: Annotated[float, Field(ge=0)] | SkipJsonSchema[None] = Field(
        default=None,
        title="Budget (USD)",
        description="Refuse to start if this run can pay more than this many USD (the clips it creates, plus lost ones made "
        "again). Empty: no budget.",
        exclude_if=lambda usd: usd is None,
        json_schema_extra=lambda schema: schema.pop("default", None),
    )
    dry_run: bool = Field(default=False, title="Estimate only", description="Price every clip and stop: nothing is created or paid.")
    review: bool = Field(
        default=False, title="Review before stitching",
        description="Stop for a review of the takes before the film is stitched (as the storyboard's review: true).",
    )
    key_secrets: dict[str, Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=100)]] = Field(
        default_factory=dict,
        title="Keys from Prefect Secret blocks",
        description='For an endpoint whose key is not on the worker: the name of the Prefect Secret block holding it, '
        'by endpoint name, e.g. {"openai": "openai-key"} (Blocks > Secret). Names only: a key never goes in this form.',
    )

    @field_validator("storyboard_path", "storage", mode="before")
    @classmethod
    def _null_is_not_given(cls, value):
        return _NOT_GIVEN if value is None else value  # API callers may send null for "not given"

    def storyboard_source(self) -> tuple[str | None, dict | None]:
        """(path, None) when a file is given, else (None, the form's storyboard as data)."""
        if self.storyboard_path:
            return self.storyboard_path, None
        return None, self.storyboard.to_storyboard_data()


__all__ = ["CameraForm", "CharacterForm", "EXAMPLE_STORYBOARD", "ProvenanceForm", "RenderRequest", "ShotForm", "StoryboardForm"]
