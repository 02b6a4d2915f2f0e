from __future__ import annotations

import pytest

from soraflow.errors import MediaError
from soraflow.media import FilmSegment, FilmSpec, SubtitleLine, copy_refusal, probe_clip, stitch_film

from .inspect_media import (
    assert_monotonic_timestamps,
    film_info,
    gray_frame,
    mean,
    streams_by_type,
    subtitle_cues,
    video_packet_count,
)

FRAME = 1 / 30
SPEC = FilmSpec(
    width=320,
    height=180,
    fps=30,
    transition_seconds=0.5,
    title="The Lighthouse Keeper",
    metadata={"comment": "AI-generated with sora-2", "ai_generated": "true"},
    preset="ultrafast",
)
# Frames each mixed clip contributes at 30 fps.
MIXED = [("match_a", 30), ("mono_44k", 36), ("no_audio", 30), ("portrait", 30)]


def mixed_segments(clips, transition: str) -> list[FilmSegment]:
    return [
        FilmSegment(
            path=clips[name],
            shot_id=name,
            label=f"{name} part 1",
            transition=transition,
            subtitles=[SubtitleLine(0.1, 0.6, f"Line of {name}")],
            chapter_title=name,
        )
        for name, _ in MIXED
    ]


def assert_film_basics(path, *, subtitles: bool, chapters: list[str]):
    kinds = streams_by_type(path)
    assert len(kinds["video"]) == 1 and len(kinds["audio"]) == 1
    assert len(kinds.get("subtitle", [])) == (1 if subtitles else 0)
    video, audio = kinds["video"][0], kinds["audio"][0]
    assert (video["codec_name"], video["width"], video["height"], video["pix_fmt"]) == ("h264", 320, 180, "yuv420p")
    assert audio["codec_name"] == "aac"
    info = film_info(path)
    assert [c["tags"]["title"] for c in info["chapters"]] == chapters
    tags = info["format"]["tags"]
    assert tags["title"] == "The Lighthouse Keeper"
    assert tags["comment"] == "AI-generated with sora-2"
    assert "ai_generated: true" in tags["description"]
    assert_monotonic_timestamps(path)
    # +faststart: the index comes before the media data.
    with open(path, "rb") as f:
        head = f.read(64)
    assert head[36:40] == b"moov"  # right after the 32-byte ftyp box


def test_matching_clips_are_joined_by_stream_copy(clips, tmp_path):
    segments = [
        FilmSegment(clips["match_a"], "dawn", "dawn part 1", subtitles=[SubtitleLine(0.1, 0.8, "Morning.")], chapter_title="Dawn"),
        FilmSegment(clips["match_b"], "dawn", "dawn part 2", subtitles=[SubtitleLine(0.2, 1.2, "Still morning.")]),
        FilmSegment(clips["match_a"], "keeper", "keeper part 1", chapter_title="Keeper"),
    ]
    result = stitch_film(segments, tmp_path / "film.mp4", SPEC)

    assert result.method == "copy" and result.reencode_reason is None
    assert_film_basics(result.path, subtitles=True, chapters=["Dawn", "Keeper"])
    assert video_packet_count(result.path) == 30 + 45 + 30  # every frame of every clip, no more
    assert result.duration == pytest.approx(3.5, abs=2 * FRAME)
    # the length reported (and put in the manifest) is the written film's: the muxer's last
    # timestamp agrees with the index's duration that ffprobe reads to a few milliseconds
    assert result.duration == pytest.approx(float(film_info(result.path)["format"]["duration"]), abs=0.01)
    assert [(t.shot_id, t.start, t.end) for t in result.timeline] == [("dawn", 0.0, 2.5), ("keeper", 2.5, 3.5)]
    cues = subtitle_cues(result.path)
    assert [(round(s, 3), round(e, 3), text) for s, e, text in cues] == [
        (0.1, 0.8, "Morning."),
        (1.2, 2.2, "Still morning."),
    ]
    assert result.has_subtitles and not result.subtitles_burned


def test_mixed_clips_are_normalized_to_the_film_format(clips, tmp_path):
    result = stitch_film(mixed_segments(clips, "cut"), tmp_path / "film.mp4", SPEC)

    assert result.method == "normalize"
    assert "differs" in result.reencode_reason or "is 640x360" in result.reencode_reason
    assert_film_basics(result.path, subtitles=True, chapters=[name for name, _ in MIXED])
    audio = streams_by_type(result.path)["audio"][0]
    assert (int(audio["sample_rate"]), audio["channel_layout"]) == (48000, "stereo")
    assert streams_by_type(result.path)["video"][0]["r_frame_rate"] == "30/1"
    frames = sum(n for _, n in MIXED)
    assert video_packet_count(result.path) == frames
    assert result.duration == pytest.approx(frames * FRAME, abs=len(MIXED) * FRAME)


@pytest.fixture(params=[6, 2], ids=["one-video-pass", "video-in-chunks"])
def clips_per_encode(request, monkeypatch):
    """Also render with chunks of two clips, so crossfades and fades fall on chunk joins."""
    from soraflow.media import _normalize

    monkeypatch.setattr(_normalize, "CLIPS_PER_ENCODE", request.param)
    return request.param


def test_crossfade_shortens_the_film_by_each_overlap(clips, tmp_path, clips_per_encode):
    segments = mixed_segments(clips, "crossfade")
    # the same clip twice, and a second silent clip: one input feeding several branches
    segments.append(FilmSegment(clips["match_a"], "again", "again", transition="crossfade", chapter_title="again"))
    result = stitch_film(segments, tmp_path / "film.mp4", SPEC)

    assert result.method == "normalize" and "crossfade" in result.reencode_reason
    assert_film_basics(result.path, subtitles=True, chapters=[name for name, _ in MIXED] + ["again"])
    frames = sum(n for _, n in MIXED) + 30
    overlap = 15  # 0.5 s at 30 fps, four times
    assert video_packet_count(result.path) == frames - 4 * overlap
    assert result.duration == pytest.approx((frames - 4 * overlap) * FRAME, abs=len(segments) * FRAME)
    starts = [t.start for t in result.timeline]
    assert starts == pytest.approx([0.0, 0.5, 1.2, 1.7, 2.2])
    # dialogue follows its segment into the overlapped timeline
    cue_starts = [round(start, 3) for start, _, _ in subtitle_cues(result.path)]
    assert cue_starts == pytest.approx([0.1, 0.6, 1.3, 1.8])


def test_fade_through_black_keeps_the_length(clips, tmp_path, clips_per_encode):
    result = stitch_film(mixed_segments(clips, "fade"), tmp_path / "film.mp4", SPEC)

    frames = sum(n for _, n in MIXED)
    assert result.method == "normalize"
    assert video_packet_count(result.path) == frames
    assert result.duration == pytest.approx(frames * FRAME, abs=len(MIXED) * FRAME)
    assert [t.start for t in result.timeline] == pytest.approx([0.0, 1.0, 2.2, 3.2])
    # black on both sides of the join, full picture in the middle of a shot
    assert mean(gray_frame(result.path, at=1.0 - FRAME)) < 20
    assert mean(gray_frame(result.path, at=1.0)) < 20
    assert mean(gray_frame(result.path, at=0.5)) > 60


def test_burned_subtitles_are_drawn_into_the_picture(clips, tmp_path):
    line = SubtitleLine(0.0, 1.0, "Another storm is coming.")
    segments = [
        FilmSegment(clips["match_a"], "dawn", "dawn", subtitles=[line]),
        FilmSegment(clips["match_b"], "keeper", "keeper"),
    ]
    spec = FilmSpec(320, 180, fps=30, burn_subtitles=True, title="The Lighthouse Keeper",
                    metadata=SPEC.metadata, preset="ultrafast")
    result = stitch_film(segments, tmp_path / "film.mp4", spec)

    assert result.method == "normalize" and result.reencode_reason == "subtitles are burned in"
    assert result.has_subtitles and result.subtitles_burned
    assert_film_basics(result.path, subtitles=False, chapters=["dawn", "keeper"])
    # the text changes the bottom of the picture, not the top
    burned, source = gray_frame(result.path, 0.5, "32x18"), gray_frame(clips["match_a"], 0.5, "32x18")
    top = sum(abs(a - b) for a, b in zip(burned[:32 * 6], source[:32 * 6])) / (32 * 6)
    bottom = sum(abs(a - b) for a, b in zip(burned[-32 * 3:], source[-32 * 3:])) / (32 * 3)
    assert bottom > 4 * max(top, 1)


def test_copy_is_refused_unless_everything_matches(clips):
    a, b = clips["match_a"], clips["match_b"]
    probes = [probe_clip(a), probe_clip(b)]
    cut = [FilmSegment(a, "s1"), FilmSegment(b, "s2")]

    assert copy_refusal(cut, probes, SPEC, burn_subtitles=False) is None
    fading = [FilmSegment(a, "s1"), FilmSegment(b, "s2", label="s2 part 1", transition="fade")]
    assert copy_refusal(fading, probes, SPEC, burn_subtitles=False) == "transition 'fade' into s2 part 1"
    assert copy_refusal(cut, probes, SPEC, burn_subtitles=True) == "subtitles are burned in"
    bigger = FilmSpec(1280, 720)
    assert "the film is 1280x720" in copy_refusal(cut, probes, bigger, burn_subtitles=False)
    assert "runs at 30 fps" in copy_refusal(cut, probes, FilmSpec(320, 180, fps=25), burn_subtitles=False)
    silent = [probe_clip(a), probe_clip(clips["no_audio"], name="quiet")]
    assert copy_refusal(cut, silent, SPEC, burn_subtitles=False) == "clip quiet has no audio track"


def test_an_unreadable_clip_fails_the_film_naming_the_clip(clips, tmp_path):
    segments = [FilmSegment(clips["match_a"], "dawn", "dawn part 1"), FilmSegment(clips["corrupt"], "keeper", "keeper part 2")]
    out = tmp_path / "film.mp4"
    with pytest.raises(MediaError, match=r"clip keeper part 2: ffprobe cannot read .*not a format ffmpeg reads \(invalid data\)"):
        stitch_film(segments, out, SPEC)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_unknown_transition_is_refused(clips, tmp_path):
    with pytest.raises(MediaError, match=r"segment 1 \(s2\): transition 'wipe' is not one of cut, crossfade, fade"):
        stitch_film([FilmSegment(clips["match_a"], "s1"), FilmSegment(clips["match_a"], "s2", transition="wipe")], tmp_path / "f.mp4", SPEC)


def test_too_little_reserved_index_space_falls_back_to_faststart(clips, tmp_path, monkeypatch, caplog):
    from soraflow.media import _stitch

    monkeypatch.setattr(_stitch, "_index_reserve", lambda *args, **kwargs: 512)
    segments = [FilmSegment(clips["match_a"], "a", chapter_title="A"), FilmSegment(clips["match_b"], "b", chapter_title="B")]
    with caplog.at_level("WARNING", logger="soraflow.media"):
        result = stitch_film(segments, tmp_path / "film.mp4", SPEC)

    assert "muxing again with +faststart" in caplog.text
    assert result.method == "copy"
    assert_film_basics(result.path, subtitles=False, chapters=["A", "B"])


def test_film_size_must_be_even(clips, tmp_path):
    with pytest.raises(MediaError, match="film size 321x180: width and height must be positive and even"):
        stitch_film([FilmSegment(clips["match_a"], "a")], tmp_path / "f.mp4", FilmSpec(321, 180))


def test_video_chunks_share_their_stream_parameters(clips, tmp_path):
    """Chunks are joined by stream copy: their H.264 parameter sets must be identical."""
    from fractions import Fraction

    from soraflow.media._normalize import plan_chunks, render_video_chunk
    from soraflow.media._timeline import place_for_encode

    segments = mixed_segments(clips, "crossfade")
    probes = [probe_clip(s.path) for s in segments]
    placed = place_for_encode(segments, probes, Fraction(30), 0.5)
    chunks = plan_chunks(placed, [str(s.path) for s in segments], Fraction(30), clips_per_encode=2)
    assert [[(p.placement.segment.shot_id, p.first_frame, p.end_frame) for p in c] for c in chunks] == [
        [("match_a", 0, 30), ("mono_44k", 0, 21)],
        [("mono_44k", 21, 36), ("no_audio", 0, 15)],
        [("no_audio", 15, 30), ("portrait", 0, 30)],
    ]
    made = [
        render_video_chunk(c, tmp_path / f"{n}.mp4", SPEC, Fraction(30), marks=[], burn_srt=None, what="test")
        for n, c in enumerate(chunks)
    ]
    signatures = {probe_clip(path).stream_copy_signature()[:9] for path in made}  # the video fields
    assert len(signatures) == 1


def test_a_film_shorter_than_its_timeline_is_refused_and_not_left_in_place(clips, tmp_path, monkeypatch):
    from soraflow.media import _stitch

    # As if a clip had been cut short between probe and mux: the timeline expects 2 s more.
    real_length = _stitch.film_length
    monkeypatch.setattr(_stitch, "film_length", lambda placed: real_length(placed) + 2.0)
    segments = [FilmSegment(clips["match_a"], "dawn", "dawn part 1"), FilmSegment(clips["match_b"], "keeper", "keeper part 1")]
    with pytest.raises(MediaError, match=r"film film\.mp4: duration 2\.5\d* s, expected 4\.5\d* s"):
        stitch_film(segments, tmp_path / "film.mp4", SPEC)
    assert list(tmp_path.iterdir()) == []


def test_the_written_length_comes_from_ffmpegs_final_progress_block(tmp_path):
    from soraflow.media._stitch import _written_length

    report = tmp_path / "progress.txt"
    report.write_text("out_time_us=500000\nprogress=continue\nout_time_us=3504000\nprogress=end\n")
    assert _written_length(report, what="film f") == 3.504
    report.write_text("out_time_us=500000\nprogress=continue\n")  # ffmpeg stopped before the end
    with pytest.raises(MediaError, match="film f: ffmpeg did not report a finished film"):
        _written_length(report, what="film f")
    with pytest.raises(MediaError, match="film f: ffmpeg wrote no progress report"):
        _written_length(tmp_path / "missing.txt", what="film f")
