"""A fal profile's arguments table: what a create sends, where the result names the video, and
every mistake refused when the file is read, naming its field, before anything is paid."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import pytest
import yaml

from soraflow.errors import ModelsFileError, StoryboardError
from soraflow.models import builtin_catalog, load_catalog
from soraflow.storyboard import parse_storyboard

from ..simulator.media import ffmpeg_image

# A fal model found on fal's site, added as docs/fal.md shows.
HAILUO = """
models:
  hailuo-02:
    endpoint: fal
    model: fal-ai/minimax/hailuo-02/standard/text-to-video
    seconds: [6, 10]
    sizes: {1360x768: 0.045}
    audio: never
    arguments:
      seconds: {name: duration, type: string, values: ["6", "10"]}
      seed: {name: seed}
      result_video: video.url
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(ModelsFileError) as info:
        load_catalog(text=text, source="models.yaml")
    return [str(p) for p in info.value.problems]


def test_each_endpoint_gets_the_clip_in_its_own_words():
    catalog = builtin_catalog()
    asks = dict(prompt="Shot a", seconds=6, size="720x1280", audio=False, seed=9)
    assert catalog.profile("veo-3.1-fal").arguments.arguments(**asks) == {
        "prompt": "Shot a", "duration": "6s", "aspect_ratio": "9:16", "resolution": "720p", "generate_audio": False, "seed": 9}
    kling = catalog.profile("kling-3.0-standard").arguments.arguments(**asks)
    assert kling == {"prompt": "Shot a", "duration": "6", "aspect_ratio": "9:16", "generate_audio": False,
                     "negative_prompt": "blur, distort, and low quality"}  # no seed argument: none is sent
    i2v = catalog.profile("kling-3.0-pro-i2v").arguments.arguments(**{**asks, "size": "1920x1080"}, image_url="https://x/y.png")
    assert i2v["start_image_url"] == "https://x/y.png" and "aspect_ratio" not in i2v
    wan = catalog.profile("wan-2.5-i2v").arguments.arguments(**{**asks, "seconds": 5, "size": "854x480"}, image_url="https://x/y.png")
    assert (wan["duration"], wan["resolution"], wan["image_url"]) == ("5", "480p", "https://x/y.png")
    table = catalog.profile("veo-3.1-fal").arguments
    assert table.video_url({"video": {"url": "https://v3.fal.media/files/a/output.mp4"}}) == "https://v3.fal.media/files/a/output.mp4"
    assert table.video_url({"videos": [{"url": "https://x"}]}) is None and table.seconds_in("8s") == 8


def test_sound_on_and_off_are_priced_apart_where_fal_prices_them_apart():
    catalog = builtin_catalog()
    assert catalog.profile("kling-3.0-standard").price("1280x720", 5, audio=True) == Decimal("0.630")
    assert catalog.profile("kling-3.0-standard").price("1280x720", 5, audio=False) == Decimal("0.420")
    assert catalog.profile("veo-3.1-fal").price("1280x720", 8, audio=False) == Decimal("1.60")
    assert catalog.profile("seedance-2.0").price("1280x720", 5, audio=True) == catalog.profile("seedance-2.0").price("1280x720", 5, audio=False)


def test_a_fal_model_from_fal_s_site_is_a_few_lines_of_yaml():
    catalog = load_catalog(text=HAILUO, source="models.yaml")
    hailuo = catalog.profile("hailuo-02")
    assert catalog.endpoint_of(hailuo).dialect == "fal" and hailuo.price("1360x768", 10) == Decimal("0.450")
    assert hailuo.arguments.arguments(prompt="p", seconds=10, size="1360x768", audio=False) == {"prompt": "p", "duration": "10"}


def test_an_unknown_field_a_length_or_size_the_endpoint_does_not_take_and_a_wrong_type_are_refused_by_path():
    shown = problems_of(HAILUO.replace("      seed: {name: seed}", "      colour: {name: colour}\n      seed: {name: seed}")
                        .replace("seconds: [6, 10]", "seconds: [6, 8, 10]")
                        .replace("sizes: {1360x768: 0.045}", "sizes: {1360x768: 0.045, 768x1360: 0.045}")
                        .replace('      result_video: video.url', '      resolution: {name: resolution, values: ["768p"]}\n'
                                 '      aspect_ratio: {name: aspect_ratio, values: [16]}\n      result_video: video.url'))
    assert any(s.startswith("models.hailuo-02.arguments.colour: unknown key; allowed keys: ") and "first_frame" in s for s in shown), shown
    # (the unknown field stops the table; the rest is checked once it parses)
    shown = problems_of(HAILUO.replace("seconds: [6, 10]", "seconds: [6, 8, 10]")
                        .replace("sizes: {1360x768: 0.045}", "sizes: {1360x768: 0.045, 1280x720: 0.045}")
                        .replace('      result_video: video.url', '      resolution: {name: resolution, values: ["768p"]}\n'
                                 '      aspect_ratio: {name: aspect_ratio, values: [16]}\n      result_video: video.url'))
    assert "models.hailuo-02.seconds[1]: 8 s is a length the endpoint does not take: duration '8' is not one the endpoint takes ('6', '10')" in shown
    assert any(s.startswith("models.hailuo-02.sizes.1280x720: a size the endpoint does not make: resolution '720p'") for s in shown), shown
    assert "models.hailuo-02.arguments.aspect_ratio.values: 16 is not a string, the type this argument is sent as" in shown


def test_inputs_and_the_dialect_must_agree_with_the_table():
    shown = problems_of(HAILUO.replace("    audio: never", "    audio: on-request\n    inputs: {first_frame: true, remix: true}"))
    assert any(s.startswith("models.hailuo-02.arguments.first_frame: must name the endpoint's image argument") for s in shown), shown
    assert any(s.startswith("models.hailuo-02.arguments.audio: is required with audio: on-request") for s in shown), shown
    assert any(s.startswith("models.hailuo-02.inputs.remix: the fal dialect makes clips") for s in shown), shown
    assert problems_of(HAILUO.replace("    arguments:\n", "    unused:\n").replace("unused:\n      seconds", "x:\n      seconds"))
    shown = problems_of("models:\n  plain: {endpoint: fal, seconds: [5], sizes: {1280x720: 0.1}}\n")
    assert shown[0].startswith("models.plain.arguments: is required for the fal dialect")
    shown = problems_of("models:\n  odd: {like: sora-2, arguments: {seconds: {name: duration}}}\n")
    assert shown == ["models.odd.arguments: an arguments table is for the fal dialect; endpoint 'openai' speaks openai-videos"]


def test_a_shot_length_the_endpoint_does_not_take_is_refused_naming_the_shot():
    board = {"title": "t", "model": "veo-3.1-fal", "size": "1280x720", "shots": [{"id": "odd", "seconds": 7, "visual": "v"}]}
    with pytest.raises(StoryboardError) as err:
        parse_storyboard(board, catalog=builtin_catalog())
    assert "shots[0].seconds" in str(err.value) and "4, 6, 8" in str(err.value)


def test_an_image_over_the_endpoint_s_limit_is_refused_before_anything_is_paid(tmp_path):
    """`soraflow render` with no key (every endpoint simulated): the first frame, fitted to the
    clip's size, is larger than the profile's limit; one clean refusal, no clip claimed."""
    ffmpeg_image(tmp_path / "noise.png", 1920, 1080)  # a test pattern: a large PNG
    (tmp_path / "models.yaml").write_text(yaml.safe_dump({"models": {"tight-kling": {
        "like": "kling-3.0-pro-i2v",
        "arguments": {"seconds": {"name": "duration", "type": "string"}, "first_frame": {"name": "start_image_url", "max_bytes": 50_000},
                      "audio": {"name": "generate_audio"}},
    }}}))
    (tmp_path / "board.yaml").write_text(yaml.safe_dump({"title": "Too big", "model": "tight-kling", "size": "1920x1080", "shots": [
        {"id": "big", "seconds": 5, "visual": "v", "input_reference": "noise.png"}]}))
    env = {"PATH": "/usr/bin:/bin", "SORAFLOW_MODELS": str(tmp_path / "models.yaml"), "SORAFLOW_STATE_DIR": str(tmp_path / "state"),
           "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "soraflow.cli", "render", str(tmp_path / "board.yaml"), "--out", str(tmp_path / "out")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "Traceback" not in done.stdout + done.stderr
    said = " ".join((done.stdout + done.stderr).split())
    assert "shots[0] (big)" in said and "takes images of at most 50000 bytes (arguments.first_frame.max_bytes)" in said, said
    from soraflow.ledger import Ledger

    ledger_file = tmp_path / "state" / "ledger.sqlite"
    assert not ledger_file.exists() or Ledger(ledger_file).entries() == {}  # nothing claimed, nothing sent
