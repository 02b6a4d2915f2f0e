"""The film's timeline is computed before ffmpeg runs: placements, chapters, dialogue."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest

from soraflow.media import FilmSegment, SubtitleLine
from soraflow.media._probe import ClipProbe
from soraflow.media._timeline import (
    chapters,
    film_subtitles,
    place_for_copy,
    place_for_encode,
    shot_timeline,
    write_ffmetadata,
    write_srt,
)

PROBE = ClipProbe(
    path=Path("clip.mp4"), name="clip", duration=2.0, video_duration=2.0, width=320, height=180,
    sample_aspect_ratio="1:1", pix_fmt="yuv420p", r_frame_rate="30/1", avg_frame_rate="30/1",
    time_base="1/15360", video_codec="h264", video_profile="High", video_extradata="40:SHA256:x",
    has_audio=True, audio_codec="aac", audio_profile="LC", sample_rate=48000, channel_layout="stereo",
    audio_extradata="5:SHA256:y", size_bytes=1000,
)


def probe(seconds: float) -> ClipProbe:
    return replace(PROBE, duration=seconds, video_duration=seconds)


def test_crossfades_overlap_whole_frames_and_never_more_than_half_a_clip():
    segments = [FilmSegment("a", "a"), FilmSegment("b", "b", transition="crossfade"), FilmSegment("c", "c", transition="crossfade")]
    placed = place_for_encode(segments, [probe(2.0), probe(0.6), probe(2.0)], Fraction(30), transition_seconds=0.5)

    # 0.6 s in the middle: each overlap is cut to 0.3 s (9 frames), half of the short clip
    assert [p.crossfade_in for p in placed] == pytest.approx([0.0, 0.3, 0.3])
    assert [p.start for p in placed] == pytest.approx([0.0, 1.7, 2.0])
    assert placed[-1].end == pytest.approx(4.0)
    assert [p.frames for p in placed] == [60, 18, 60]


def test_fades_go_through_black_without_changing_the_length():
    segments = [FilmSegment("a", "a"), FilmSegment("b", "b", transition="fade")]
    placed = place_for_encode(segments, [probe(2.0), probe(1.0)], Fraction(24), transition_seconds=0.5)

    assert (placed[0].fade_out, placed[1].fade_in) == (0.25, 0.25)
    assert (placed[0].fade_in, placed[1].fade_out) == (0.0, 0.0)
    assert [p.start for p in placed] == [0.0, 2.0]
    assert placed[-1].end == 3.0


def test_copy_placement_follows_container_durations():
    placed = place_for_copy([FilmSegment("a", "a"), FilmSegment("b", "b")], [probe(1.25), probe(2.0)])
    assert [(p.start, p.end) for p in placed] == [(0.0, 1.25), (1.25, 3.25)]


def test_parts_of_a_shot_share_one_timeline_entry_and_chapter():
    segments = [
        FilmSegment("a1", "dawn", chapter_title="Dawn"),
        FilmSegment("a2", "dawn"),
        FilmSegment("b1", "keeper"),  # no title given: a new shot still starts a chapter
    ]
    placed = place_for_copy(segments, [probe(2.0), probe(2.0), probe(1.0)])

    assert [(t.shot_id, t.start, t.end) for t in shot_timeline(placed)] == [("dawn", 0.0, 4.0), ("keeper", 4.0, 5.0)]
    assert [(c.title, c.start, c.end) for c in chapters(placed)] == [("Dawn", 0.0, 4.0), ("keeper", 4.0, 5.0)]


def test_dialogue_is_shifted_clipped_to_its_segment_and_never_overlaps():
    segments = [
        FilmSegment("a", "a", subtitles=[SubtitleLine(0.5, 2.5, "Too long for its clip"), SubtitleLine(3.0, 4.0, "after the end")]),
        FilmSegment("b", "b", transition="crossfade", subtitles=[SubtitleLine(0.0, 1.0, "Hello\n\nthere")]),
    ]
    placed = place_for_encode(segments, [probe(2.0), probe(2.0)], Fraction(30), transition_seconds=0.5)
    lines = film_subtitles(placed)

    assert [(round(x.start, 3), round(x.end, 3), x.text) for x in lines] == [
        (0.5, 1.5, "Too long for its clip"),  # clipped at the next line, which starts in the overlap
        (1.5, 2.5, "Hello\nthere"),
    ]


def test_sidecar_files(tmp_path):
    srt = write_srt([SubtitleLine(61.5, 3723.004, "Hi")], tmp_path / "x.srt").read_text()
    assert srt == "1\n00:01:01,500 --> 01:02:03,004\nHi\n"

    placed = place_for_copy([FilmSegment("a", "a", chapter_title="One; two = #3")], [probe(1.5)])
    meta = write_ffmetadata(
        "Title", {"comment": "AI-generated with sora-2", "ai_generated": "true"}, chapters(placed), tmp_path / "m"
    ).read_text()
    assert meta.splitlines() == [
        ";FFMETADATA1",
        "comment=AI-generated with sora-2",
        "title=Title",
        "description=ai_generated: true",
        "[CHAPTER]",
        "TIMEBASE=1/1000",
        "START=0",
        "END=1500",
        "title=One\\; two \\= \\#3",
    ]
