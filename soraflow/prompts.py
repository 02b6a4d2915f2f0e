"""Prompt preparation: deterministic text from a shot and the storyboard's defaults.

The same storyboard always yields the same prompt bytes, because the prompt is part of the
clip key: a nondeterministic prompt would make every rerun pay again. The first line names
the shot and part so a generated clip (and the simulator's rendering) can be traced back.
"""

from __future__ import annotations

from .storyboard import Shot, Storyboard

_MOVEMENT = {
    "static": "static camera",
    "pan_left": "camera pans left",
    "pan_right": "camera pans right",
    "zoom_in": "camera zooms in",
    "zoom_out": "camera zooms out",
    "track": "tracking shot following the subject",
}
_FRAMING = {
    "wide": "wide shot",
    "medium": "medium shot",
    "close-up": "close-up",
    "extreme_close-up": "extreme close-up",
}


def shot_header(shot_id: str, part: int, parts: int) -> str:
    return f"Shot {shot_id} — part {part} of {parts}" if parts > 1 else f"Shot {shot_id}"


def build_prompt(sb: Storyboard, shot: Shot, *, part: int = 1, parts: int = 1, part_seconds: int | None = None) -> str:
    """The prompt for one clip: ``part`` (1-based) of ``parts`` clips that make up ``shot``."""
    lines = [shot_header(shot.id, part, parts), ""]
    if parts > 1:
        if part == 1:
            lines.append(
                f"This is the opening {part_seconds or ''} seconds of a continuous shot in {parts} parts; "
                "end mid-action so the next part can continue it.".replace("  ", " ")
            )
        elif shot.continuity == "last_frame":
            lines.append(
                f"The opening frame is the last frame of part {part - 1} of the same shot: continue from it seamlessly, "
                "same subject, same position, same lighting, same camera path; no new establishing shot."
            )
        else:
            lines.append(
                f"Continue seamlessly from the end of part {part - 1} of the same shot: same subject, "
                "same position, same lighting, same camera path; no new establishing shot."
            )
        lines.append("")

    lines.append(f"Visual: {shot.visual}")
    if shot.camera is not None:
        c = shot.camera
        lines.append(f"Camera: {_FRAMING[c.framing]}, {_MOVEMENT[c.movement]}, {c.speed} speed.")
    if shot.lighting:
        lines.append(f"Lighting: {shot.lighting}")
    style = sb.style_of(shot)
    if style:
        lines.append(f"Style: {style}")
    if sb.palette:
        lines.append(f"Palette: {', '.join(sb.palette)}")
    if sb.identity_anchors:
        # Anchors go into every part so a character looks the same across clips and shots.
        lines.append(f"Continuity (keep identical in every shot): {'; '.join(sb.identity_anchors)}")
    for name, character in sb.cast_of(shot):
        # Only the shot's cast: a landscape is not told about the keeper's coat.
        lines.append(f"Character {name} (keep identical wherever {name} appears): {'; '.join(character.anchors)}")
    if shot.audio:
        lines.append(f"Audio: {shot.audio}")
    spoken = dialogue_for_part(shot, part, parts)
    if spoken:
        lines.append("Dialogue:")
        lines.extend(f'- {d.speaker}: "{d.line}"' for d in spoken)
    return "\n".join(lines).strip() + "\n"


def dialogue_for_part(shot: Shot, part: int, parts: int):
    """Dialogue lines are spread across a split shot's parts in order, none repeated."""
    lines = shot.dialogue
    if parts <= 1 or not lines:
        return list(lines)
    per = -(-len(lines) // parts)
    return list(lines[(part - 1) * per : part * per])
