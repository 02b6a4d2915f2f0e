"""Rendering: what a clip shows, the on-disk cache, and renders shared while running."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from soraflow.simulator.render import Renderer, SourceClip, render_spec

from .media import probe

SOURCE = SourceClip(Path("/nowhere/video.mp4"), digest="abc", seconds=4, has_audio=True, label="video_src")
PROMPT = "Shot keeper — part 2 of 2\n\nContinue seamlessly from the end of part 1 of the same shot: same subject.\n\nVisual: stairs"


def test_the_clip_shows_the_prompts_first_lines_and_a_hash():
    spec = render_spec(prompt=PROMPT, model="sora-2", size="720x1280", seconds=8)
    assert spec.lines[0] == "Shot keeper — part 2 of 2"
    assert spec.lines[1].startswith("Continue seamlessly")
    assert spec.lines[-1].startswith("sora-2 · 720x1280 · 8 s · #")
    same = render_spec(prompt=PROMPT, model="sora-2", size="720x1280", seconds=8)
    assert same.key == spec.key
    others = [
        render_spec(prompt=PROMPT + " ", model="sora-2", size="720x1280", seconds=8),
        render_spec(prompt=PROMPT, model="sora-2", size="1280x720", seconds=8),
        render_spec(prompt=PROMPT, model="sora-2", size="720x1280", seconds=4),
        render_spec(prompt=PROMPT, model="sora-2", size="720x1280", seconds=8, reference=b"png"),
        render_spec(prompt=PROMPT, model="sora-2", size="720x1280", seconds=8, remixed_from="video_1"),
        render_spec(prompt=PROMPT, model="sora-2", size="720x1280", seconds=8, edited_from="video_1"),
        render_spec(prompt=PROMPT, model="sora-2", size="720x1280", seconds=8, extends=SOURCE),
        render_spec(prompt=PROMPT, model="sora-2", size="720x1280", seconds=8, extends=replace(SOURCE, digest="other")),
    ]
    assert len({spec.key, *(o.key for o in others)}) == 9


def test_an_extension_names_its_source_and_counts_its_new_seconds():
    spec = render_spec(prompt=PROMPT, model="sora-2", size="720x1280", seconds=8, extends=SOURCE)
    assert spec.lines[-1].startswith("sora-2 · 720x1280 · +8 s · #") and spec.lines[-1].endswith("extends video_src")
    assert (spec.seconds, spec.total_seconds) == (8, 12)


def test_renders_are_cached_and_shared_while_running(tmp_path):
    renderer = Renderer(tmp_path / "cache", workers=2)
    spec = render_spec(prompt="Shot cache", model="sora-2", size="720x1280", seconds=4)
    first, second = renderer.submit(spec), renderer.submit(spec)
    assert first is second  # one ffmpeg run for two jobs
    media = first.result()
    assert renderer.submit(spec).result().folder == media.folder
    assert (renderer.rendered, renderer.cache_hits) == (1, 2)
    again = Renderer(tmp_path / "cache")  # another simulator sharing the cache dir
    assert again.submit(spec).result().folder == media.folder and again.rendered == 0
    renderer.close()
    again.close()
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".tmp")]
    info = probe(media.path("video"))
    assert abs(info["duration"] - 4) <= 0.1 and [s["codec_name"] for s in info["video"]] == ["h264"]
