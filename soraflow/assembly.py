"""Assembling the film: stored clips in storyboard order → film, contact sheet, manifest."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from . import __version__, media, provenance
from .plan import ClipSpec, Plan, sha256_file
from .storage import film_object_key
from .archive import StoredClip, clip_storage_key, is_output_folder

FILM_NAME = "film.mp4"
MANIFEST_NAME = "manifest.json"
CONTACT_SHEET_NAME = "contact_sheet.png"
REVIEW_CUT_NAME = "review-cut.mp4"  # under OUT/.work: the chosen takes as a review shows them


class AssembledFilm(BaseModel):
    model_config = ConfigDict(frozen=True)

    film: str
    contact_sheet: str
    duration: float
    method: str
    timeline: list[dict]
    has_subtitles: bool
    inputs_sha256: str = ""  # what the film was made from (film_inputs_sha256)
    sha256: str = ""  # of film.mp4
    contact_sheet_sha256: str = ""
    reused: bool = False  # the film in OUT was already made from these inputs: not stitched again
    c2pa_manifest: str | None = None  # the label of the film's C2PA manifest; None: the film is not signed
    signed_by: str | None = None  # the signing certificate, as a C2PA reader names it
    provenance_summary: str | None = None  # what `soraflow verify` says of the film, as markdown (for the artifact)


def subtitle_lines(spec: ClipSpec, duration: float) -> list[media.SubtitleLine]:
    """Spread a clip's dialogue evenly over its duration, in order."""
    if not spec.dialogue:
        return []
    step = duration / len(spec.dialogue)
    return [
        media.SubtitleLine(start=i * step, end=(i + 1) * step - 0.05, text=f"{d.speaker}: {d.line}")
        for i, d in enumerate(spec.dialogue)
    ]


def film_inputs_sha256(
    plan: Plan, clip_sha256: dict[str, str], *, transition_seconds: float, burn_subtitles: bool, signer_identity: str | None = None
) -> str:
    """A hash of everything that shapes film.mp4 and contact_sheet.png: the clips' bytes in
    storyboard order, what is drawn or muxed from the plan (labels, transitions, dialogue,
    chapters, title, size), the settings and soraflow version that stitch them, and who signs
    the film (``signer_identity``, the certificate's fingerprint) with what in its manifest.
    Only each shot's chosen take counts: another take stored beside it changes nothing in the film."""
    material = {
        "soraflow": __version__,
        "title": plan.title,
        "size": plan.size,
        "models": plan.models,
        "transition_seconds": transition_seconds,
        "burn_subtitles": burn_subtitles,
        "clips": [
            [c.shot_id, c.part, c.parts, c.clip_key, clip_sha256[c.clip_key], c.transition, [[d.speaker, d.line] for d in c.dialogue]]
            for c in plan.chosen_clips
        ],
    }
    if signer_identity is not None:  # an unsigned film's inputs hash as before signing existed
        material["provenance"] = {"signer": signer_identity, "include_prompts": plan.provenance.include_prompts}
    return hashlib.sha256(json.dumps(material, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def assemble(
    plan: Plan, stored: list[StoredClip], out_dir: Path, *, transition_seconds: float, burn_subtitles: bool,
    signing: provenance.SigningCredentials | None = None,
) -> AssembledFilm:
    """film.mp4 and contact_sheet.png in ``out_dir``, at the storyboard's size, the film signed
    with its C2PA manifest when ``signing`` is given (the film's last write); the film already
    there is kept when it was made from exactly these inputs (its manifest says so, its bytes
    are still those the manifest records, and its C2PA manifest still validates)."""
    by_key = {s.clip_key: s for s in stored}
    inputs = film_inputs_sha256(
        plan, {k: s.sha256 for k, s in by_key.items()}, transition_seconds=transition_seconds, burn_subtitles=burn_subtitles,
        signer_identity=signing.identity if signing else None,
    )
    if (previous := made_from(out_dir, inputs)) is not None:
        return previous
    out_dir.mkdir(parents=True, exist_ok=True)
    film_path = out_dir / FILM_NAME
    # A film to sign is stitched under a name of its own and signed into film.mp4: an unsigned
    # film never stands where the signed one is expected.
    stitched = film_path if signing is None else out_dir / f".{film_path.stem}.{uuid.uuid4().hex[:12]}.stitched.mp4"
    try:
        result, sheet, signed, reading = _stitch_and_sign(
            plan, by_key, stitched, film_path, out_dir, transition_seconds, burn_subtitles, signing
        )
    finally:
        if stitched != film_path:
            stitched.unlink(missing_ok=True)
    if signed is not None and (not reading.ok or reading.label != signed.label):
        raise provenance.ProvenanceError(f"the film was signed but does not read back as signed: {reading.verdict()}")
    return AssembledFilm(
        film=str(film_path),
        contact_sheet=str(sheet),
        duration=result.duration,
        method=result.method,
        timeline=[dict(t) if isinstance(t, dict) else _timeline_row(t) for t in result.timeline],
        has_subtitles=result.has_subtitles,
        inputs_sha256=inputs,
        sha256=sha256_file(film_path),
        contact_sheet_sha256=sha256_file(sheet),
        c2pa_manifest=signed.label if signed else None,
        signed_by=reading.signer if reading else None,
        provenance_summary=reading.markdown() if reading else None,
    )


def _stitch_and_sign(
    plan: Plan, by_key: dict[str, StoredClip], stitched: Path, film_path: Path, out_dir: Path,
    transition_seconds: float, burn_subtitles: bool, signing: provenance.SigningCredentials | None,
) -> tuple[media.StitchResult, Path, provenance.SignedFilm | None, provenance.FilmReading | None]:
    """Stitch into ``stitched`` and make the contact sheet; with ``signing``, sign ``stitched``
    into ``film_path`` (the film's last write) and read it back as ``soraflow verify`` does (an
    answer is checked before it is trusted). Signing overlaps the work it does not depend on:
    its manifest and ingredients (every clip read) are made while ffmpeg stitches, and the film
    is signed and read back (every byte hashed, and rewritten, by c2pa) while the contact sheet
    is drawn."""
    width, height = plan.film_width_height
    sheet = out_dir / CONTACT_SHEET_NAME
    firsts = [(Path(by_key[c.clip_key].local_path), c.shot_id) for c in plan.chosen_clips if c.part == 1]
    segments, spec = _segments(plan, by_key), _film_spec(plan, transition_seconds, burn_subtitles)
    if signing is None:
        result = media.stitch_film(segments, stitched, spec)
        media.contact_sheet(firsts, sheet, film_size=(width, height))
        return result, sheet, None, None
    clips = provenance.film_clips(plan, {k: (Path(s.local_path), s.sha256) for k, s in by_key.items()})
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="soraflow-film") as beside:
        signer = beside.submit(provenance.FilmSigner, title=plan.title, clips=clips, credentials=signing)
        try:
            result = media.stitch_film(segments, stitched, spec)
        except BaseException:
            _close_when_made(signer)
            raise
        drawn = beside.submit(media.contact_sheet, firsts, sheet, film_size=(width, height))
        signed = signer.result().sign(
            stitched,
            film_path,
            provenance.Stitching(
                method=result.method,
                size=plan.size,
                transitions=[f"{c.transition} into {c.shot_id}" for c in plan.film_clips[1:] if c.transition != "cut"],
                subtitles=("burned in" if result.subtitles_burned else "soft track") if result.has_subtitles else None,
                fitted=plan.fitting_notes(),
            ),
        )
        reading = provenance.read_film(film_path)
        drawn.result()
    return result, sheet, signed, reading


def _close_when_made(signer) -> None:
    try:
        signer.result().close()
    except Exception:  # noqa: BLE001 - the stitch's own error is the one to report
        pass


def review_cut(plan: Plan, stored: list[StoredClip], work_dir: Path, *, transition_seconds: float, burn_subtitles: bool) -> Path:
    """The cut a review shows: the chosen takes stitched as the film would be, into the work
    directory (``OUT/.work/review-cut.mp4``; the film itself is made once the cut is approved)."""
    by_key = {s.clip_key: s for s in stored}
    work_dir.mkdir(parents=True, exist_ok=True)
    dest = work_dir / REVIEW_CUT_NAME
    media.stitch_film(_segments(plan, by_key), dest, _film_spec(plan, transition_seconds, burn_subtitles))
    return dest


def _segments(plan: Plan, by_key: dict[str, StoredClip]) -> list:
    """The film's segments: each shot's chosen take, an extended clip played by its extension."""
    segments, opened = [], set()
    for spec in plan.film_clips:
        clip = by_key[spec.clip_key]
        segments.append(
            media.FilmSegment(
                path=Path(clip.local_path),
                shot_id=spec.shot_id,
                label=spec.label,
                transition=spec.transition,
                subtitles=subtitle_lines(spec, clip.duration),
                chapter_title=spec.shot_id if spec.shot_id not in opened else None,
            )
        )
        opened.add(spec.shot_id)
    return segments


def _film_spec(plan: Plan, transition_seconds: float, burn_subtitles: bool):
    width, height = plan.film_width_height
    return media.FilmSpec(
        width=width,
        height=height,
        transition_seconds=transition_seconds,
        burn_subtitles=burn_subtitles,
        title=plan.title,
        metadata={"comment": f"AI-generated video made with {', '.join(plan.models)} by soraflow", "ai_generated": "true"},
    )


def made_from(out_dir: Path, inputs_sha256: str) -> AssembledFilm | None:
    """The film and contact sheet in ``out_dir``, if its manifest says they were made from
    ``inputs_sha256`` and their bytes are still the ones it records; else None."""
    try:
        film = json.loads((out_dir / MANIFEST_NAME).read_text(encoding="utf-8"))["film"]
        if not film or film.get("inputs_sha256") != inputs_sha256:
            return None
        film_path, sheet = out_dir / FILM_NAME, out_dir / CONTACT_SHEET_NAME
        if sha256_file(film_path) != film["sha256"] or sha256_file(sheet) != film["contact_sheet_sha256"]:
            return None
        reading = None
        if label := film.get("c2pa_manifest"):  # a signed film is kept only while its manifest validates
            reading = provenance.read_film(film_path)
            if not reading.ok or reading.label != label:
                return None
        return AssembledFilm(
            film=str(film_path),
            contact_sheet=str(sheet),
            duration=film["duration_seconds"],
            method=film["assembly"],
            timeline=film["timeline"],
            has_subtitles=film["subtitles"],
            inputs_sha256=inputs_sha256,
            sha256=film["sha256"],
            contact_sheet_sha256=film["contact_sheet_sha256"],
            reused=True,
            c2pa_manifest=label or None,
            signed_by=reading.signer if reading else None,
            provenance_summary=reading.markdown() if reading else None,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def up_to_date(
    plan: Plan, out_dir: Path, storage, *, transition_seconds: float, burn_subtitles: bool, signer_identity: str | None = None
) -> dict | None:
    """The manifest in ``out_dir`` when rendering ``plan`` again would change nothing: it lists
    exactly these clips, its film and contact sheet were made from them with these settings and
    signer (``signer_identity``) and are still those bytes, a signed film's manifest still
    validates, and ``storage`` still holds every clip (and every output kept outside
    ``out_dir``) with the recorded checksum. Else None. Reads files and asks the store; never
    the provider, never Prefect."""
    try:
        manifest = json.loads((out_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
        clips = manifest["clips"]
        if manifest.get("storage") != storage.url or [c["clip_key"] for c in clips] != [c.clip_key for c in plan.clips]:
            return None
        sha256 = {c["clip_key"]: c["sha256"] for c in clips}
        inputs = film_inputs_sha256(
            plan, sha256, transition_seconds=transition_seconds, burn_subtitles=burn_subtitles, signer_identity=signer_identity
        )
        if made_from(out_dir, inputs) is None:
            return None
        for spec in plan.clips:
            if storage.exists(clip_storage_key(plan.title, spec), sha256[spec.clip_key]) is None:
                return None
        if not is_output_folder(storage, out_dir):
            for name in (FILM_NAME, CONTACT_SHEET_NAME, MANIFEST_NAME):
                expected = manifest["outputs"].get(name, {}).get("sha256") if name != MANIFEST_NAME else None
                if storage.exists(film_object_key(plan.title, name), expected) is None:
                    return None
        return manifest
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _timeline_row(entry) -> dict:
    if hasattr(entry, "model_dump"):
        return entry.model_dump()
    if hasattr(entry, "__dataclass_fields__"):
        return {k: getattr(entry, k) for k in entry.__dataclass_fields__}
    shot_id, start, end = entry
    return {"shot_id": shot_id, "start": start, "end": end}


def build_manifest(
    plan: Plan,
    stored: list[StoredClip],
    film: AssembledFilm | None,
    *,
    created_here: dict[str, bool],
    storage_url: str,
    outputs: dict[str, dict] | None = None,
    paid_creates: dict[str, int] | None = None,
) -> dict:
    """The manifest: what was made, from what, where it is, and what it cost.

    ``paid_creates`` (from the ledger) counts, per clip, every create that may have been paid:
    a clip generated again after its job was lost, or created again at the user's word after a
    create in doubt, is billed for each. A clip the ledger does not know was paid once.

    Every take is listed with its cost (``take``, ``chosen``): a take is paid for whether or not
    the film uses it, so the billed totals count them all; ``film_usd`` is what the film's own
    clips (the chosen takes) cost.
    """
    by_key = {s.clip_key: s for s in stored}
    clips = []
    billed_seconds, billed = 0, Decimal("0")  # what the film's clips cost: every create paid for them
    run_seconds, run_billed = 0, Decimal("0")  # what this run created
    film_usd = sum((c.price_usd for c in plan.chosen_clips), Decimal("0"))
    for spec in plan.clips:
        s = by_key.get(spec.clip_key)
        new = created_here.get(spec.clip_key, False)
        creates = max(1, (paid_creates or {}).get(spec.clip_key, 1))
        if s is not None:
            billed_seconds += spec.seconds * creates
            billed += spec.price_usd * creates
            if new:
                run_seconds += spec.seconds
                run_billed += spec.price_usd
        clips.append(
            {
                "shot_id": spec.shot_id,
                "part": spec.part,
                "parts": spec.parts,
                "clip_key": spec.clip_key,
                "job_id": s.job_id if s else None,
                "profile": spec.profile,
                "model": spec.model,
                "endpoint": spec.endpoint,
                "size": spec.size,
                "seconds": spec.seconds,
                "audio": spec.audio,
                "price_usd": f"{spec.price_usd:.2f}",
                "paid_creates": creates,
                "sha256": s.sha256 if s else None,
                "storage_uri": s.uri if s else None,
                "link": s.link if s else None,
                "generated_this_run": new,
                "prompt_sha256": spec.prompt_sha256,
                # made from another clip of the film: its last frame, an extension of it, or a remix
                "made_from": {"kind": spec.follows.kind, "clip_key": spec.follows.clip_key} if spec.follows else None,
                "in_film": spec.in_film and plan.is_chosen(spec),
                "take": spec.take,
                "chosen": plan.is_chosen(spec),
                "retake": spec.retake,
                "seed": spec.seed,
            }
        )
    return {
        "soraflow_version": __version__,
        "title": plan.title,
        # Each endpoint the film used, by name, with its identity (a URL without credentials).
        "endpoints": {name: route.identity for name, route in sorted(plan.routes.items())},
        "storage": storage_url,
        "ai_generated": True,
        "models": plan.models,
        "film": (
            {
                "path": FILM_NAME,
                "size": plan.size,
                "duration_seconds": round(film.duration, 3),
                "assembly": film.method,
                "subtitles": film.has_subtitles,
                "timeline": film.timeline,
                "fitted": plan.fitting_notes(),
                "inputs_sha256": film.inputs_sha256,
                "sha256": film.sha256,
                "contact_sheet_sha256": film.contact_sheet_sha256,
                # the film's C2PA manifest (Content Credentials) by its label, and who signed it; None: unsigned
                "c2pa_manifest": film.c2pa_manifest,
                "signed_by": film.signed_by,
            }
            if film
            else None
        ),
        "outputs": outputs or {},
        "clips": clips,
        "totals": {
            "clips": len(plan.clips),
            "planned_seconds": plan.total_seconds,
            "estimated_usd": f"{plan.total_usd:.2f}",
            "billed_seconds": billed_seconds,
            "billed_usd": f"{billed:.2f}",
            "takes": len({(c.shot_id, c.take) for c in plan.clips}),
            "film_usd": f"{film_usd:.2f}",
        },
        # What this run did: only in the local manifest and the run's artifacts (see stable_manifest).
        "run": {
            "rendered_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "billed_seconds": run_seconds,
            "billed_usd": f"{run_billed:.2f}",
            "reused_clips": sum(1 for c in clips if c["job_id"] and not c["generated_this_run"]),
            "film_stitched": bool(film and not film.reused),
        },
    }


# Fields that change from run to run although the film does not.
_RUN_ONLY_CLIP_FIELDS = ("generated_this_run",)
_RUN_ONLY_OUTPUT_FIELDS = ("uploaded",)


def stable_manifest(manifest: dict) -> dict:
    """The manifest as stored next to the film: without this run's facts.

    A rerun of an unchanged storyboard then writes the same bytes, so the stored copy is not
    uploaded again. No manifest holds a presigned link: it would carry the access key id and
    session token (``soraflow link`` makes one when it is wanted).
    """
    stable = {k: v for k, v in manifest.items() if k != "run"}
    stable["clips"] = [{k: v for k, v in c.items() if k not in _RUN_ONLY_CLIP_FIELDS} for c in manifest["clips"]]
    stable["outputs"] = {
        name: {k: v for k, v in out.items() if k not in _RUN_ONLY_OUTPUT_FIELDS} for name, out in manifest["outputs"].items()
    }
    return stable


def outputs_markdown(
    manifest: dict, out_dir: Path, *, host: str, sheet_jpeg: bytes | None, links: dict[str, str], provenance_summary: str | None = None
) -> str:
    """What the run made, for a person looking at the run in the Prefect UI: the contact sheet
    as an image embedded in the page (a worker's file:// path does not open in a browser),
    where each output is, a link only where one opens without credentials, and the film's
    provenance as `soraflow verify` reads it (``provenance_summary``)."""
    film, totals, run = manifest["film"], manifest["totals"], manifest["run"]
    lines = [f"## {_markdown_text(manifest['title'])}: {film['duration_seconds']:.1f} s, {film['size']}", ""]
    if sheet_jpeg:
        encoded = base64.b64encode(sheet_jpeg).decode("ascii")
        lines += [f"![Contact sheet: one frame per shot](data:image/jpeg;base64,{encoded})", ""]
    lines += [f"On the worker `{_markdown_text(host)}`, in `{out_dir}`:", ""]
    for name in (FILM_NAME, CONTACT_SHEET_NAME, MANIFEST_NAME):
        stored = (manifest.get("outputs") or {}).get(name, {}).get("uri", "")
        also = ""
        if stored and stored != (out_dir / name).as_uri():  # kept elsewhere too (S3, another folder)
            also = f", stored at [{_markdown_text(stored)}]({links[name]})" if name in links else f", stored at `{stored}`"
        lines.append(f"- **{name}**{also}")
    lines += [
        "",
        f"Billed this run: ${run['billed_usd']} ({run['reused_clips']} of {totals['clips']} clips reused); "
        f"the film's clips cost ${totals['billed_usd']}, estimated ${totals['estimated_usd']}.",
    ]
    for note in film.get("fitted") or []:
        lines.append(f"\n> {_markdown_text(note)}")
    if provenance_summary:
        lines += ["", provenance_summary.rstrip("\n")]
    elif not film.get("c2pa_manifest"):
        lines += ["", "### Provenance (C2PA)", "", "**Unsigned**: no C2PA signer is configured, so film.mp4 carries no Content Credentials."]
    return "\n".join(lines) + "\n"


def _markdown_text(text: str) -> str:
    """User text shown as text in markdown (a title is not markup)."""
    return "".join(f"\\{ch}" if ch in "\\`*_{}[]<>#|" else ch for ch in str(text))


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
