"""Reading a film's C2PA manifest back: what ``soraflow verify`` and the film's artifact say.

c2pa's Reader validates the manifest against the file (every byte of the media hashed). What it
finds is put plainly, one kind at a time:

- ``Trusted``: intact, signed by a certificate a trust anchor vouches for;
- ``Valid``: intact; a signer no trust list knows (a development chain) is said, not failed;
- ``Invalid``: the media or the manifest changed after signing (each failure in words);
- damaged: the manifest or the MP4's structure cannot even be parsed (the Reader raises);
- unsigned: no manifest at all.

``read_film`` never raises for a film it can open: the reading says what is wrong.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import c2pa

from ..terminal import printable
from .definition import CLIP_FIELDS, TRAINED_ALGORITHMIC_MEDIA

Status = Literal["trusted", "valid", "invalid", "damaged", "unsigned"]
UNTRUSTED = "signingCredential.untrusted"

# What each failure means, for people (codes from the C2PA specification's validation codes).
_PLAIN = {
    "assertion.bmffHash.mismatch": "the film's media changed after it was signed: its bytes no longer match the signed hash",
    "assertion.dataHash.mismatch": "the file's bytes changed after it was signed: they no longer match the signed hash",
    "assertion.boxesHash.mismatch": "the file's bytes changed after it was signed: they no longer match the signed hash",
    "assertion.hashedURI.mismatch": "an assertion of the manifest was changed after signing",
    "assertion.missing": "an assertion the claim names is missing from the manifest",
    "claimSignature.mismatch": "the manifest's signature does not match its claim: the claim was changed after signing",
    "claimSignature.missing": "the manifest has no signature",
    "claimSignature.outsideValidity": "the certificate was not valid when the film was signed",
    "signingCredential.expired": "the signing certificate had expired when it signed",
    "signingCredential.revoked": "the signing certificate has been revoked",
    "signingCredential.invalid": "the signing certificate is not a valid C2PA signing certificate",
    "timeStamp.mismatch": "the signature's time-stamp does not match the signature",
    "timeStamp.untrusted": "the time-stamp authority is not trusted",
    "ingredient.hashedURI.mismatch": "an ingredient's manifest was changed after the film was signed",
    "ingredient.manifest.mismatch": "an ingredient's manifest does not match what the film recorded",
}


@dataclass(frozen=True)
class Finding:
    code: str
    message: str  # in words


@dataclass(frozen=True)
class Ingredient:
    """One ingredient of the film, with soraflow's facts when soraflow signed it."""

    title: str
    relationship: str
    shot_id: str | None = None
    part: int | None = None
    parts: int | None = None
    take: int | None = None  # which take of its shot (the film's chosen one)
    retake: bool = False  # a review asked for that take
    model: str | None = None
    endpoint: str | None = None
    endpoint_identity: str | None = None
    seconds: int | None = None
    sha256: str | None = None
    prompt: str | None = None
    own_manifest: bool = False  # it came signed by its provider: its manifest travels in the film's store

    @property
    def take_text(self) -> str:
        """The take as a table shows it: ``2``, ``3 (retake)``; empty when not known."""
        return "" if self.take is None else f"{self.take} (retake)" if self.retake else str(self.take)


@dataclass(frozen=True)
class FilmReading:
    path: str
    status: Status
    state: str | None = None  # c2pa's validation state: Trusted, Valid or Invalid
    label: str | None = None
    title: str | None = None
    claim_generator: str | None = None
    signer: str | None = None  # who signed (issuer, common name), as the certificate says
    signed_at: str | None = None  # from a time-stamp authority, when one was used
    ai_generated: str | None = None  # the digital source type of the c2pa.created action
    actions: list[str] = field(default_factory=list)
    ingredients: list[Ingredient] = field(default_factory=list)
    failures: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # said, not failed (an untrusted signer, an ingredient's own findings)
    error: str | None = None  # damaged or unsigned: what the Reader said

    @property
    def ok(self) -> bool:
        return self.status in ("trusted", "valid")

    @property
    def untrusted(self) -> bool:
        return self.status == "valid"

    def verdict(self) -> str:
        """One line: the state and what it means."""
        if self.status == "trusted":
            return "Trusted: the film is intact and its signer is vouched for by a trust anchor"
        if self.status == "valid":
            return "Valid: the film is intact, as signed; its signer is not on any trust list here (untrusted, e.g. a development certificate)"
        if self.status == "invalid":
            return "Invalid: " + "; ".join(f.message for f in self.failures)
        if self.status == "damaged":
            return f"Damaged: {self.error}"
        return f"Unsigned: {self.error}"

    def ai_line(self) -> str:
        return ai_line(self.ai_generated)

    def as_dict(self) -> dict:
        return asdict(self)

    def markdown(self) -> str:
        """The same summary as ``soraflow verify``, for a Prefect artifact."""
        lines = ["### Provenance (C2PA)", "", f"**{_md(self.verdict())}**", ""]
        if self.label:
            lines += [
                f"- manifest: `{_md(self.label)}`",
                f"- signer: {_md(self.signer or 'unknown')}" + (f", at {_md(self.signed_at)} (time-stamped)" if self.signed_at else ""),
                f"- AI-generated: {_md(ai_line(self.ai_generated))}",
                f"- claim generator: {_md(self.claim_generator or 'unknown')}",
            ]
        lines += [f"- note: {_md(n)}" for n in self.notes]
        lines += [f"- failure `{_md(f.code)}`: {_md(f.message)}" for f in self.failures]
        if self.ingredients:
            lines += ["", "| shot | take | part | model | endpoint | seconds | signed by provider |", "|---|---|---|---|---|---|---|"]
            for i in self.ingredients:
                part = f"{i.part}/{i.parts}" if i.part else ""
                lines.append(
                    f"| {_md(i.shot_id or i.title)} | {i.take_text} | {part} | {_md(i.model or '')} | {_md(i.endpoint or '')} | "
                    f"{i.seconds if i.seconds is not None else ''} | {'yes' if i.own_manifest else 'no'} |"
                )
        return "\n".join(lines) + "\n"


def ai_line(source_type: str | None) -> str:
    if source_type is None:
        return "no c2pa.created action with a digital source type"
    name = source_type.rsplit("/", 1)[-1]
    if source_type == TRAINED_ALGORITHMIC_MEDIA:
        return f"yes: c2pa.created, digitalSourceType {name} (made by a trained model)"
    return f"c2pa.created, digitalSourceType {name}"


def read_film(path: str | Path, *, trust_anchors: bytes | None = None) -> FilmReading:
    """Validate ``path``'s C2PA manifest against its bytes. ``trust_anchors``: PEM roots to trust
    (a film signed by a chain under one of them reads ``trusted``). OSError if it cannot be opened."""
    path = Path(path)
    config: dict = {}
    if trust_anchors:
        config = {"verify": {"verify_trust": True}, "trust": {"user_anchors": trust_anchors.decode("utf-8", "replace")}}
    with open(path, "rb") as stream, c2pa.Context.from_dict(config) as context:
        try:
            reader = c2pa.Reader("video/mp4", stream, context=context)
        except c2pa.C2paError.ManifestNotFound:
            return FilmReading(str(path), "unsigned", error="it carries no C2PA manifest (no Content Credentials): nothing says who made it or how")
        except c2pa.C2paError as err:
            return FilmReading(str(path), "damaged", error=_damage(err))
        with reader:
            try:
                store = json.loads(reader.json())
            except c2pa.C2paError as err:
                return FilmReading(str(path), "damaged", error=_damage(err))
    return _reading(path, store)


def _reading(path: Path, store: dict) -> FilmReading:
    state = store.get("validation_state")
    label = store.get("active_manifest")
    manifest = (store.get("manifests") or {}).get(label) or {}
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    failures = [Finding(r.get("code", "?"), _plain(r)) for r in results.get("failure") or [] if r.get("code") != UNTRUSTED]
    notes = []
    if any(r.get("code") == UNTRUSTED for r in results.get("failure") or []):
        notes.append("the signing certificate is not on any trust list here (signingCredential.untrusted): the film is intact, but who signed it is not vouched for")
    for delta in (store.get("validation_results") or {}).get("ingredientDeltas") or []:
        for r in (delta.get("validationDeltas") or {}).get("failure") or []:
            notes.append(f"an ingredient's own manifest: {_plain(r)}")
    if state == "Trusted":
        status: Status = "trusted"
    elif state == "Valid":
        status = "valid"
    else:
        status = "invalid"
        if not failures:
            failures = [Finding("validation", f"c2pa's validation state is {state!r}")]
    actions = _actions(manifest)
    created = next((a for a in actions if a.get("action") == "c2pa.created"), {})
    info = manifest.get("signature_info") or {}
    generator = next(iter(manifest.get("claim_generator_info") or []), {})
    return FilmReading(
        path=str(path),
        status=status,
        state=state,
        label=label,
        title=manifest.get("title"),
        claim_generator=" ".join(str(generator[k]) for k in ("name", "version") if generator.get(k)) or manifest.get("claim_generator"),
        signer=_signer(info),
        signed_at=info.get("time"),
        ai_generated=created.get("digitalSourceType"),
        actions=[str(a.get("action")) for a in actions],
        ingredients=[_ingredient(i) for i in manifest.get("ingredients") or []],
        failures=failures,
        notes=notes,
    )


def _signer(info: dict) -> str | None:
    name, issuer = info.get("common_name"), info.get("issuer")
    if name and issuer:
        return f"{name} (issued by {issuer})"
    return str(name or issuer) if (name or issuer) else None


def _actions(manifest: dict) -> list[dict]:
    found = []
    for assertion in manifest.get("assertions") or []:
        if str(assertion.get("label", "")).startswith("c2pa.actions"):
            found += (assertion.get("data") or {}).get("actions") or []
    return found


def _ingredient(data: dict) -> Ingredient:
    facts = (data.get("metadata") or {}).get(CLIP_FIELDS) or {}

    def text(key):
        value = facts.get(key)
        return None if value is None else str(value)

    def number(key):
        value = facts.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return Ingredient(
        title=str(data.get("title") or ""),
        relationship=str(data.get("relationship") or ""),
        shot_id=text("shot_id"),
        part=number("part"),
        parts=number("parts"),
        take=number("take"),
        retake=facts.get("retake") is True,
        model=text("model"),
        endpoint=text("endpoint"),
        endpoint_identity=text("endpoint_identity"),
        seconds=number("seconds"),
        sha256=text("sha256"),
        prompt=text("prompt"),
        own_manifest=bool(data.get("active_manifest")),
    )


def _plain(result: dict) -> str:
    code = str(result.get("code") or "?")
    plain = _PLAIN.get(code)
    return f"{plain} ({code})" if plain else f"{code}: {result.get('explanation') or 'no explanation given'}"


def _damage(err: Exception) -> str:
    kind = type(err).__name__.lstrip("_").removeprefix("C2pa") or "Error"
    detail = printable(str(err), 300)
    if kind in ("Verify", "JumbfParse", "Jumbf", "Decoding", "Manifest", "Json"):
        return f"its C2PA manifest is damaged and cannot be read, so nothing in it can be trusted (c2pa {kind}: {detail})"
    if kind == "NotSupported":
        return f"c2pa cannot read this kind of file (c2pa {kind}: {detail})"
    return f"its MP4 structure or its manifest is damaged and cannot be read, so it cannot be verified (c2pa {kind}: {detail})"


def _md(text: str) -> str:
    return "".join(f"\\{ch}" if ch in "\\`*_{}[]<>#|" else ch for ch in printable(str(text), 500))


__all__ = ["Finding", "FilmReading", "Ingredient", "ai_line", "read_film"]
