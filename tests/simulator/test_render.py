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


def test_a_request_without_a_seed_asked_again_makes_another_video_drawn_apart(start_sim, tmp_path):
    """A take of a model with no seed is the same request made again: the simulator, as a model
    does, makes another video each time (drawn as take 2, 3 with a band and a background of their
    own); a simulator reset starts the count again."""
    import warnings

    from .conftest import sdk_client
    from .media import band_colour, close_colours, corner_colour

    sim = start_sim()
    client = sdk_client(sim)

    def take(name: str) -> tuple:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            video = client.videos.create_and_poll(prompt="Shot harbour\nBoats at dawn", seconds="4", size="1280x720")
            path = tmp_path / f"{name}.mp4"
            client.videos.download_content(video.id).write_to_file(path)
        return band_colour(path, 1), corner_colour(path, 1)

    first, second, third = take("1"), take("2"), take("3")
    sim.reset()
    again = take("again")
    same = lambda a, b: close_colours(a[0], b[0]) and close_colours(a[1], b[1])  # noqa: E731
    assert not same(first, second) and not same(second, third) and not same(first, third)
    assert same(first, again)
    assert close_colours(first[0], first[1])  # take 1 has no band: its background shows there


def test_a_mark_is_part_of_what_a_render_is():
    plain = render_spec(prompt=PROMPT, model="sora-2", size="720x1280", seconds=4)
    assert plain.as_take(1) is plain and plain.as_take(2).mark == "take 2" and plain.as_take(2).key != plain.key
    seeded = render_spec(prompt=PROMPT, model="veo", size="720x1280", seconds=4, seed=7)
    assert seeded.mark == "seed 7" and seeded.as_take(3) is seeded  # a seed fixes the video: no take counting
