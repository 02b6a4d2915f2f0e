"""Assembly: the film has the storyboard's size, clips of another size are fitted (and said so),
and a film whose inputs did not change is not stitched again."""

from __future__ import annotations

import json
from pathlib import Path

import ffmpeg
import pytest

from soraflow import assembly
from soraflow.models import builtin_catalog, route_endpoints
from soraflow.plan import plan_storyboard, sha256_file
from soraflow.archive import StoredClip
from soraflow.storyboard import parse_storyboard

CATALOG = builtin_catalog()
ROUTING = route_endpoints(CATALOG, {"OPENAI_BASE_URL": "http://127.0.0.1:1/v1", "OPENAI_API_KEY": "sk-test"})

PORTRAIT_WITH_A_PRO_SHOT = {
    "title": "Stairs",
    "model": "sora-2",
    "size": "720x1280",
    "shots": [
        {"id": "climb", "seconds": 4, "visual": "stairs"},
        {"id": "lamp", "seconds": 4, "visual": "a lamp", "model": "sora-2-pro", "size": "1024x1792"},
        {"id": "sea", "seconds": 4, "visual": "the sea", "size": "1280x720"},
    ],
}


def make_clip(path: Path, size: str, seconds: float = 1.0) -> Path:
    video = ffmpeg.input(f"testsrc2=s={size}:r=30:d={seconds}", f="lavfi")
    audio = ffmpeg.input(f"sine=f=440:r=48000:d={seconds}", f="lavfi")
    ffmpeg.output(video, audio, str(path), vcodec="libx264", preset="ultrafast", pix_fmt="yuv420p", acodec="aac").run(
        quiet=True, overwrite_output=True
    )
    return path


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    plan = plan_storyboard(parse_storyboard(PORTRAIT_WITH_A_PRO_SHOT), catalog=CATALOG, routing=ROUTING)
    folder = tmp_path_factory.mktemp("clips")
    clips = []
    for spec in plan.clips:
        path = make_clip(folder / f"{spec.shot_id}.mp4", spec.size)
        clips.append(
            StoredClip(
                clip_key=spec.clip_key, job_id=f"video_{spec.shot_id}", local_path=str(path), sha256=sha256_file(path),
                size=path.stat().st_size, duration=1.0, uri=path.as_uri(), key=path.name, uploaded=False,
            )
        )
    return plan, clips


def test_the_film_has_the_storyboards_size_and_fitted_clips_are_named(stored, tmp_path):
    plan, clips = stored
    assert plan.clips[0].size == "720x1280" and plan.size == "720x1280"
    notes = plan.fitting_notes()
    assert notes == [
        "shot 'lamp': its 1024x1792 clip (sora-2-pro) will be fitted into the 720x1280 film, scaled down to 720x1260, "
        "so 51% of its pixels are not shown and with black bars (another aspect ratio)",
        "shot 'sea': its 1280x720 clip (sora-2) will be fitted into the 720x1280 film, scaled down to 720x405, "
        "so 68% of its pixels are not shown and with black bars (another aspect ratio)",
    ]
    film = assembly.assemble(plan, clips, tmp_path, transition_seconds=0.5, burn_subtitles=False)
    video = next(s for s in ffmpeg.probe(film.film)["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (720, 1280)
    manifest = assembly.build_manifest(plan, clips, film, created_here={}, storage_url=tmp_path.as_uri())
    assert manifest["film"]["size"] == "720x1280" and manifest["film"]["fitted"] == notes


def test_a_larger_storyboard_size_is_kept_when_the_first_clip_is_smaller():
    data = {**PORTRAIT_WITH_A_PRO_SHOT, "model": "sora-2-pro", "size": "1024x1792"}
    data["shots"] = [{**data["shots"][0], "size": "720x1280"}, {"id": "lamp", "seconds": 4, "visual": "a lamp"}]
    plan = plan_storyboard(parse_storyboard(data), catalog=CATALOG, routing=ROUTING)
    assert plan.size == "1024x1792" and plan.film_width_height == (1024, 1792)
    assert plan.fitting_notes() == ["shot 'climb': its 720x1280 clip (sora-2-pro) will be fitted into the 1024x1792 film, scaled up 1.40x and with black bars (another aspect ratio)"]


def test_a_film_made_from_the_same_inputs_is_not_stitched_again(stored, tmp_path):
    plan, clips = stored
    first = assembly.assemble(plan, clips, tmp_path, transition_seconds=0.5, burn_subtitles=False)
    assembly.write_json_atomic(tmp_path / assembly.MANIFEST_NAME, assembly.build_manifest(plan, clips, first, created_here={}, storage_url=""))
    made = (tmp_path / "film.mp4").stat().st_mtime_ns

    again = assembly.assemble(plan, clips, tmp_path, transition_seconds=0.5, burn_subtitles=False)
    assert again.reused and (tmp_path / "film.mp4").stat().st_mtime_ns == made
    assert again.model_dump(exclude={"reused"}) == first.model_dump(exclude={"reused"})

    # Another transition length, or a film that is not the one the manifest recorded: stitched again.
    other = assembly.assemble(plan, clips, tmp_path, transition_seconds=0.25, burn_subtitles=False)
    assert not other.reused and other.inputs_sha256 != first.inputs_sha256
    assembly.write_json_atomic(tmp_path / assembly.MANIFEST_NAME, assembly.build_manifest(plan, clips, other, created_here={}, storage_url=""))
    with open(tmp_path / "film.mp4", "ab") as f:
        f.write(b"\0")
    assert not assembly.assemble(plan, clips, tmp_path, transition_seconds=0.25, burn_subtitles=False).reused
    assert json.loads((tmp_path / assembly.MANIFEST_NAME).read_text())["film"]["inputs_sha256"] == other.inputs_sha256


def test_the_outputs_page_shows_the_contact_sheet_and_where_each_output_is(stored, tmp_path):
    plan, clips = stored
    film = assembly.assemble(plan, clips, tmp_path, transition_seconds=0.5, burn_subtitles=False)
    outputs = {name: {"uri": (tmp_path / name).as_uri()} for name in (assembly.FILM_NAME, assembly.CONTACT_SHEET_NAME)}
    manifest = assembly.build_manifest(plan, clips, film, created_here={}, storage_url=tmp_path.as_uri(), outputs=outputs)
    manifest["title"] = "Stairs [draft] <b>"
    page = assembly.outputs_markdown(manifest, tmp_path, host="worker-1", sheet_jpeg=b"\xff\xd8jpeg", links={})
    assert page.startswith("## Stairs \\[draft\\] \\<b\\>: 3.0 s, 720x1280\n")
    assert "![Contact sheet: one frame per shot](data:image/jpeg;base64,/9hqcGVn)" in page
    assert f"On the worker `worker-1`, in `{tmp_path}`:\n\n- **film.mp4**\n- **contact_sheet.png**\n- **manifest.json**\n" in page
    assert "> shot 'lamp': its 1024x1792 clip (sora-2-pro) will be fitted" in page
    manifest["outputs"]["film.mp4"]["uri"] = "s3://films/stairs/film.mp4"
    linked = assembly.outputs_markdown(manifest, tmp_path, host="w", sheet_jpeg=None, links={"film.mp4": "https://example.test/film"})
    assert "data:image" not in linked
    assert "- **film.mp4**, stored at [s3://films/stairs/film.mp4](https://example.test/film)\n" in linked


def test_a_signed_film_is_signed_last_kept_while_it_validates_and_signed_again_for_another_signer(stored, tmp_path):
    from soraflow import provenance
    from soraflow.settings import Settings

    def credentials(folder):
        chain = provenance.make_dev_chain(tmp_path / folder)
        return provenance.load_credentials(Settings(provenance_cert_chain=chain.chain, provenance_private_key=chain.private_key))

    plan, clips = stored
    out, signing = tmp_path / "out", credentials("chain-a")
    film = assembly.assemble(plan, clips, out, transition_seconds=0.5, burn_subtitles=False, signing=signing)
    assert sorted(p.name for p in out.iterdir()) == ["contact_sheet.png", "film.mp4"]  # the unsigned stitch is gone
    reading = provenance.read_film(out / "film.mp4")
    assert film.c2pa_manifest == reading.label and reading.ok and "UNTRUSTED" in film.signed_by
    assert [(i.shot_id, i.model, i.seconds) for i in reading.ingredients] == [("climb", "sora-2", 4), ("lamp", "sora-2-pro", 4), ("sea", "sora-2", 4)]
    assert film.provenance_summary == reading.markdown() and film.sha256 == sha256_file(out / "film.mp4")
    manifest = assembly.build_manifest(plan, clips, film, created_here={}, storage_url="")
    assert (manifest["film"]["c2pa_manifest"], manifest["film"]["signed_by"]) == (film.c2pa_manifest, film.signed_by)
    assembly.write_json_atomic(out / assembly.MANIFEST_NAME, manifest)
    made = (out / "film.mp4").stat().st_mtime_ns
    page = assembly.outputs_markdown(manifest, out, host="w", sheet_jpeg=None, links={}, provenance_summary=film.provenance_summary)
    assert page.endswith(reading.markdown()) and "**Valid: the film is intact" in page and "| lamp | 1 | 1/1 | sora-2-pro |" in page

    again = assembly.assemble(plan, clips, out, transition_seconds=0.5, burn_subtitles=False, signing=signing)
    assert again.reused and again.c2pa_manifest == film.c2pa_manifest and (out / "film.mp4").stat().st_mtime_ns == made
    # the same bytes, but a manifest.json naming another C2PA manifest: not the film it recorded
    assembly.write_json_atomic(out / assembly.MANIFEST_NAME, {**manifest, "film": {**manifest["film"], "c2pa_manifest": "urn:c2pa:other"}})
    assert assembly.made_from(out, film.inputs_sha256) is None
    assembly.write_json_atomic(out / assembly.MANIFEST_NAME, manifest)

    other = assembly.assemble(plan, clips, out, transition_seconds=0.5, burn_subtitles=False, signing=credentials("chain-b"))
    assert not other.reused and other.c2pa_manifest not in (None, film.c2pa_manifest) and other.inputs_sha256 != film.inputs_sha256
    unsigned = assembly.assemble(plan, clips, out, transition_seconds=0.5, burn_subtitles=False)
    assert not unsigned.reused and unsigned.c2pa_manifest is None and unsigned.inputs_sha256 == assembly.film_inputs_sha256(
        plan, {c.clip_key: c.sha256 for c in clips}, transition_seconds=0.5, burn_subtitles=False
    )
    assert provenance.read_film(out / "film.mp4").status == "unsigned"
    page = assembly.outputs_markdown(assembly.build_manifest(plan, clips, unsigned, created_here={}, storage_url=""), out, host="w", sheet_jpeg=None, links={})
    assert page.endswith("### Provenance (C2PA)\n\n**Unsigned**: no C2PA signer is configured, so film.mp4 carries no Content Credentials.\n")
