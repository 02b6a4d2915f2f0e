"""Signing a film and reading it back: checked with c2pa's Reader directly (not soraflow's
reading), then through ``read_film`` for every kind of failure a verifier must name."""

from __future__ import annotations

import json
from pathlib import Path

import c2pa
import ffmpeg
import pytest

from soraflow import provenance
from soraflow.provenance.definition import CLIP_FIELDS, TRAINED_ALGORITHMIC_MEDIA



def film_clips(paths: list[Path], *, prompt: str | None = None) -> list[provenance.FilmClip]:
    return [
        provenance.FilmClip(
            path=p, shot_id=f"shot{i}", part=1, parts=1, profile="sora-2", model=model, endpoint=endpoint, endpoint_identity=identity,
            size="320x180", seconds=4, sha256=f"{i:064x}", clip_key=f"key{i}", prompt=prompt,
        )
        for i, (p, (model, endpoint, identity)) in enumerate(
            zip(paths, [("sora-2", "gateway", "http://gateway.test/v1"), ("veo-3.1-fast-generate-001", "vertex", "vertex:proj/us-central1")])
        )
    ]


def sign(stitched: Path, film: Path, clips, signing, **kw) -> provenance.SignedFilm:
    stitching = provenance.Stitching("normalize", "320x180", transitions=["crossfade into shot1"], subtitles="soft track")
    return provenance.sign_film(stitched, film, title="Two Dialects", clips=clips, stitching=stitching, credentials=signing, **kw)


def stitched(clips: list[Path], out: Path) -> Path:
    listing = out.with_suffix(".txt")
    listing.write_text("".join(f"file '{p}'\n" for p in clips))
    ffmpeg.input(str(listing), f="concat", safe=0).output(str(out), c="copy").run(quiet=True, overwrite_output=True)
    return out


def streams(path: Path) -> list[tuple]:
    info = ffmpeg.probe(str(path), count_frames=None)
    return [(s["codec_type"], s["codec_name"], s.get("width"), s.get("height"), s.get("nb_frames"), s.get("duration")) for s in info["streams"]]


@pytest.fixture(scope="module")
def signed_film(tmp_path_factory, two_clips, signing):
    folder = tmp_path_factory.mktemp("signed")
    source = stitched(two_clips, folder / "stitched.mp4")
    film = folder / "film.mp4"
    result = sign(source, film, film_clips(two_clips), signing)
    return source, film, result


def test_the_signed_film_reads_back_in_c2pa_as_ai_made_from_its_clips(signed_film):
    source, film, result = signed_film
    with open(film, "rb") as f, c2pa.Reader("video/mp4", f) as reader:
        assert reader.get_validation_state() == "Valid"  # a development chain: intact, signer untrusted
        failures = [r["code"] for r in reader.get_validation_results()["activeManifest"]["failure"]]
        manifest = reader.get_active_manifest()
        store = json.loads(reader.json())
    assert failures == ["signingCredential.untrusted"]
    assert store["active_manifest"] == result.label and result.label.startswith("urn:c2pa:")
    assert manifest["title"] == "Two Dialects"
    assert manifest["claim_generator_info"][0]["name"] == "soraflow" and manifest["claim_generator_info"][0]["version"]
    actions = next(a["data"]["actions"] for a in manifest["assertions"] if a["label"].startswith("c2pa.actions"))
    assert [a["action"] for a in actions] == ["c2pa.created", "c2pa.placed", "c2pa.edited"]
    assert actions[0]["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA and actions[0]["when"]
    assert len(actions[1]["parameters"]["ingredients"]) == 2  # both clips placed
    assert "crossfade into shot1" in actions[2]["description"] and actions[2]["parameters"]["subtitles"] == "soft track"
    facts = [i["metadata"][CLIP_FIELDS] for i in manifest["ingredients"]]
    assert [(f["shot_id"], f["model"], f["endpoint"], f["endpoint_identity"], f["sha256"]) for f in facts] == [
        ("shot0", "sora-2", "gateway", "http://gateway.test/v1", f"{0:064x}"),
        ("shot1", "veo-3.1-fast-generate-001", "vertex", "vertex:proj/us-central1", f"{1:064x}"),
    ]
    assert all("prompt" not in f for f in facts)  # not unless the storyboard opts in
    assert [i["relationship"] for i in manifest["ingredients"]] == ["componentOf", "componentOf"]
    # the manifest is an added box: the same streams, frames and length as the stitched film
    assert streams(film) == streams(source)


def test_prompts_go_in_only_when_asked_and_a_failed_signing_leaves_the_film_as_it_was(two_clips, signing, tmp_path):
    source = stitched(two_clips, tmp_path / "stitched.mp4")
    film = tmp_path / "film.mp4"
    sign(source, film, film_clips(two_clips, prompt="A quay at night, one lamp."), signing)
    reading = provenance.read_film(film)
    assert [i.prompt for i in reading.ingredients] == ["A quay at night, one lamp."] * 2
    before = film.read_bytes()
    with pytest.raises(provenance.ProvenanceError, match="signing film.mp4 failed"):
        sign(tmp_path / "gone.mp4", film, film_clips(two_clips), signing)
    assert film.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["film.mp4", "stitched.mp4", "stitched.txt"]


def test_a_clip_signed_by_its_provider_brings_its_own_manifest(two_clips, signing, tmp_path):
    """Providers sign their output (Sora and Veo clips carry C2PA manifests): the film keeps
    each such clip's manifest as its ingredient's."""
    provider_clip = tmp_path / "provider.mp4"
    with c2pa.Builder({"claim_generator_info": [{"name": "a video provider"}], "title": "clip"}) as builder:
        builder.set_intent(c2pa.C2paBuilderIntent.CREATE, c2pa.C2paDigitalSourceType.TRAINED_ALGORITHMIC_MEDIA)
        with signing.signer() as signer, open(two_clips[1], "rb") as src, open(provider_clip, "w+b") as dst:
            builder.sign(signer, "video/mp4", src, dst)
    clips = [two_clips[0], provider_clip]
    film = tmp_path / "film.mp4"
    sign(stitched(clips, tmp_path / "stitched.mp4"), film, film_clips(clips), signing)
    with open(film, "rb") as f, c2pa.Reader("video/mp4", f) as reader:
        store = json.loads(reader.json())
    ingredients = store["manifests"][store["active_manifest"]]["ingredients"]
    assert "active_manifest" not in ingredients[0]
    own = ingredients[1]["active_manifest"]
    assert store["manifests"][own]["claim_generator_info"][0]["name"] == "a video provider"
    assert [i.own_manifest for i in provenance.read_film(film).ingredients] == [False, True]


def flipped(film: Path, at: int, out: Path) -> Path:
    data = bytearray(film.read_bytes())
    data[at] ^= 0xFF
    out.write_bytes(bytes(data))
    return out


def test_a_changed_media_byte_a_damaged_manifest_and_an_unsigned_film_are_each_said_plainly(signed_film, dev_chain, tmp_path):
    source, film, result = signed_film
    reading = provenance.read_film(film)
    assert (reading.status, reading.ok, reading.label, reading.failures) == ("valid", True, result.label, [])
    assert reading.signer == "soraflow development signer (UNTRUSTED) (issued by soraflow development certificate - UNTRUSTED, not for publishing)"
    assert reading.ai_generated == TRAINED_ALGORITHMIC_MEDIA and "untrusted" in reading.notes[0]
    assert [(i.shot_id, i.model, i.seconds) for i in reading.ingredients] == [("shot0", "sora-2", 4), ("shot1", "veo-3.1-fast-generate-001", 4)]
    assert provenance.read_film(film, trust_anchors=dev_chain.root.read_bytes()).status == "trusted"

    data = film.read_bytes()
    mdat = data.index(b"mdat")
    tampered = provenance.read_film(flipped(film, mdat + 2000, tmp_path / "mdat.mp4"))
    assert (tampered.status, tampered.ok, [f.code for f in tampered.failures]) == ("invalid", False, ["assertion.bmffHash.mismatch"])
    assert tampered.verdict() == (
        "Invalid: the film's media changed after it was signed: its bytes no longer match the signed hash (assertion.bmffHash.mismatch)"
    )
    manifest_box = data.index(b"uuid")  # c2pa's box, right after ftyp
    damaged = provenance.read_film(flipped(film, manifest_box + 600, tmp_path / "manifest.mp4"))
    assert damaged.status == "damaged" and damaged.verdict().startswith("Damaged: its C2PA manifest is damaged and cannot be read")
    unsigned = provenance.read_film(source)
    assert (unsigned.status, unsigned.ok) == ("unsigned", False) and "carries no C2PA manifest" in unsigned.verdict()


def test_the_same_summary_in_markdown_for_the_artifact(signed_film):
    page = provenance.read_film(signed_film[1]).markdown()
    assert page.startswith("### Provenance (C2PA)\n\n**Valid: the film is intact")
    assert "| shot0 | 1 | 1/1 | sora-2 | gateway | 4 | no |" in page
    assert "yes: c2pa.created, digitalSourceType trainedAlgorithmicMedia" in page
