"""A fal endpoint's arguments, as data: which storyboard field goes into which argument, how.

fal's endpoints each name their inputs their own way: Kling's ``duration`` is ``"5"``, Veo on
fal's is ``"8s"``, a size is ``aspect_ratio`` here and ``resolution`` there, a first frame is
``image_url`` or ``start_image_url``. A profile of the fal dialect says it in a small table::

    arguments:
      seconds: {name: duration, type: string}           # 5 -> "5"
      aspect_ratio: {name: aspect_ratio, values: ["16:9", "9:16", "1:1"]}
      first_frame: {name: image_url, max_bytes: 10485760}
      audio: {name: generate_audio}
      seed: {name: seed}
    result_video: video.url                              # where the result names the video

The fields are soraflow's (``FIELDS``); an unknown one is refused with its path. ``prompt``
is sent as ``prompt`` unless the table says otherwise; a field the table leaves out is never
sent (the endpoint's default applies). ``arguments()`` builds what a create sends, and
``describe()`` is read back by the simulator, which checks a request the way the table says
the endpoint takes it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ArgumentName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
WireValue = str | int | bool
# soraflow's side of the table, and the wire type each field takes unless the table says.
FIELDS: dict[str, str] = {
    "prompt": "string",
    "seconds": "integer",
    "aspect_ratio": "string",
    "resolution": "string",
    "first_frame": "string",  # a URL: fal's storage upload, or a data: URI
    "audio": "boolean",
    "seed": "integer",
    "negative_prompt": "string",
}
_PATH = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*|\.\d+)*$"


class Argument(BaseModel):
    """One endpoint argument: its name, how the value is written, what the endpoint allows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ArgumentName
    type: Literal["string", "integer", "boolean"] | None = None  # default: the field's own (FIELDS)
    suffix: str = Field(default="", max_length=8)  # written after a string value: Veo on fal's "8s"
    values: tuple[WireValue, ...] = ()  # what the endpoint allows, as sent (empty: anything of its type)
    value: WireValue | None = None  # a constant sent with every request (a negative prompt)
    max_bytes: Annotated[int, Field(ge=1)] | None = None  # an image argument's size limit


class Arguments(BaseModel):
    """A fal profile's ``arguments:`` table (the fields are soraflow's, the names the endpoint's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: Argument = Argument(name="prompt")
    seconds: Argument | None = None
    aspect_ratio: Argument | None = None
    resolution: Argument | None = None
    first_frame: Argument | None = None
    audio: Argument | None = None
    seed: Argument | None = None
    negative_prompt: Argument | None = None
    # Where the result names the video's URL (``video.url``; ``videos.0.url``).
    result_video: str = Field(default="video.url", pattern=_PATH)

    def mapped(self) -> dict[str, Argument]:
        """soraflow field -> argument, for the fields the table maps."""
        return {f: a for f in FIELDS if (a := getattr(self, f)) is not None}

    def type_of(self, field: str) -> str:
        argument = getattr(self, field)
        return argument.type or FIELDS[field]

    def wire(self, field: str, value: Any) -> WireValue:
        """``value`` of a storyboard field as the endpoint's argument takes it (5 -> "5s")."""
        argument: Argument = getattr(self, field)
        if argument.value is not None:
            return argument.value
        kind = self.type_of(field)
        if kind == "string":
            return f"{value}{argument.suffix}"
        if kind == "integer":
            return int(value)
        return bool(value)

    def problems(self, field: str, value: Any) -> str | None:
        """Why the endpoint would not take ``value`` for ``field`` (None: it would)."""
        argument: Argument = getattr(self, field)
        wired = self.wire(field, value)
        if argument.values and wired not in argument.values:
            allowed = ", ".join(repr(v) for v in argument.values)
            return f"{argument.name} {wired!r} is not one the endpoint takes ({allowed})"
        return None

    def arguments(
        self,
        *,
        prompt: str,
        seconds: int,
        size: str,
        audio: bool,
        seed: int | None = None,
        image_url: str | None = None,
    ) -> dict[str, WireValue]:
        """What one create sends: every mapped field with a value, in the endpoint's names."""
        from .profiles import aspect_and_resolution

        aspect, resolution = aspect_and_resolution(size)
        given: dict[str, Any] = {
            "prompt": prompt,
            "seconds": seconds,
            "aspect_ratio": aspect,
            "resolution": resolution,
            "first_frame": image_url,
            "audio": audio,
            "seed": seed,
            "negative_prompt": None,
        }
        out: dict[str, WireValue] = {}
        for field, argument in self.mapped().items():
            value = given[field]
            if value is None and argument.value is None:
                continue
            out[argument.name] = self.wire(field, value)
        return out

    def video_url(self, result: Any) -> str | None:
        """The video URL at ``result_video`` in a result (None: not there, or not a string)."""
        node = result
        for step in self.result_video.split("."):
            if isinstance(node, dict):
                node = node.get(step)
            elif isinstance(node, list) and step.isdigit() and int(step) < len(node):
                node = node[int(step)]
            else:
                return None
        return node if isinstance(node, str) else None

    def seconds_in(self, wired: Any) -> int | None:
        """The clip length a ``seconds`` argument's value names ("8s" -> 8; None: it names none)."""
        if self.seconds is None:
            return None
        text = str(wired)
        if self.seconds.suffix and text.endswith(self.seconds.suffix):
            text = text[: -len(self.seconds.suffix)]
        return int(text) if re.fullmatch(r"\d{1,4}", text) else None


__all__ = ["FIELDS", "Argument", "Arguments"]
