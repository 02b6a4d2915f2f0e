from __future__ import annotations

import pytest

from soraflow.errors import MediaError
from soraflow.media import probe_clip, validate_clip


def test_probe_reads_video_and_audio_layout(clips):
    probe = probe_clip(clips["match_a"], name="dawn part 1")

    assert probe.name == "dawn part 1"
    assert (probe.width, probe.height, probe.size) == (320, 180, "320x180")
    assert probe.fps == 30 and probe.r_frame_rate == "30/1"
    assert probe.duration == pytest.approx(1.0, abs=0.05)
    assert probe.video_codec == "h264" and probe.video_profile == "High"
    assert probe.pix_fmt == "yuv420p" and probe.sample_aspect_ratio == "1:1"
    assert probe.time_base.startswith("1/")
    size, digest = probe.video_extradata.split(":", 1)
    assert int(size) > 0 and digest.startswith("SHA256:")
    assert probe.has_audio and probe.audio_codec == "aac"
    assert (probe.sample_rate, probe.channel_layout) == (48000, "stereo")


def test_probe_reports_mono_44k_and_missing_audio(clips):
    mono = probe_clip(clips["mono_44k"])
    assert (mono.sample_rate, mono.channel_layout, mono.fps) == (44100, "mono", 25)

    silent = probe_clip(clips["no_audio"])
    assert not silent.has_audio
    assert (silent.audio_codec, silent.sample_rate, silent.channel_layout) == (None, None, None)


def test_stream_copy_signature_matches_only_compatible_clips(clips):
    a, b = probe_clip(clips["match_a"]), probe_clip(clips["match_b"])
    assert a.stream_copy_signature() == b.stream_copy_signature()
    assert a.duration != b.duration  # length is not part of it
    for other in ("mono_44k", "no_audio", "portrait"):
        assert probe_clip(clips[other]).stream_copy_signature() != a.stream_copy_signature()


@pytest.mark.parametrize(
    "clip, says",
    [
        ("empty", "empty (0 bytes)"),
        ("corrupt", "not a format ffmpeg reads (invalid data)"),
        ("truncated", "moov atom not found"),
        ("audio_only", "no video stream (streams found: audio)"),
    ],
)
def test_unusable_clip_raises_media_error_naming_it(clips, clip, says):
    with pytest.raises(MediaError) as caught:
        probe_clip(clips[clip], name=f"shot-3 part 2 ({clip})")
    message = str(caught.value)
    assert f"clip shot-3 part 2 ({clip})" in message
    assert says in message


def test_missing_clip_raises_media_error(tmp_path):
    with pytest.raises(MediaError, match="clip ghost: cannot read"):
        probe_clip(tmp_path / "nope.mp4", name="ghost")


def test_validate_clip_checks_size_and_duration(clips):
    ok = validate_clip(clips["match_b"], expect_size="320x180", expect_seconds=1.5, name="b")
    assert ok.size == "320x180"

    with pytest.raises(MediaError, match=r"clip b: size is 320x180, expected 1280x720"):
        validate_clip(clips["match_b"], expect_size="1280x720", expect_seconds=1.5, name="b")
    with pytest.raises(MediaError, match=r"clip b: duration is 1\.5\d* s, expected 4 s"):
        validate_clip(clips["match_b"], expect_size="320x180", expect_seconds=4, name="b")
    with pytest.raises(MediaError, match="no video stream"):
        validate_clip(clips["audio_only"], expect_size=None, expect_seconds=None, name="a")
