"""Signing the film: its C2PA manifest embedded, as the film's last write.

c2pa's Builder takes the definition and each clip as an ingredient (read from its file, so a clip
its provider signed brings its manifest along), then the stitching's edits, then signs the
stitched film from one file into another (a ``dest`` stream: the film never passes through
soraflow's memory), which is renamed onto the film only once c2pa has finished. A Builder signs
once; each film gets its own.

``FilmSigner`` splits this in two so the film step can overlap it with its other work: the
Builder and its ingredients (every clip read) are made while ffmpeg stitches, and the signing
itself (every byte of the film hashed and rewritten) while the contact sheet is drawn.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import c2pa

from ..terminal import printable
from .credentials import SigningCredentials
from .definition import VIDEO_MP4, FilmClip, Stitching, edited_action, film_definition, ingredient
from .errors import ProvenanceError

# c2pa-rs keeps a signing's intermediate copy of the asset in memory up to this size, then in a
# temporary file (core.backing_store_memory_threshold_in_mb, 512 by default): a film is larger
# than memory should hold for it.
_IN_MEMORY_MB = 0


@dataclass(frozen=True)
class SignedFilm:
    label: str  # the active manifest's label (urn:c2pa:...), named in manifest.json and the stored film's metadata
    signer: str  # the signing certificate's subject
    manifest_bytes: int


class FilmSigner:
    """One film's signing: the manifest and its ingredients made now, the film signed once later."""

    def __init__(self, *, title: str, clips: list[FilmClip], credentials: SigningCredentials, when: datetime | None = None):
        self._credentials, self._when = credentials, when
        self._context = c2pa.Context.from_dict({"core": {"backing_store_memory_threshold_in_mb": _IN_MEMORY_MB}})
        try:
            self._builder = c2pa.Builder(film_definition(title, clips, when=when), context=self._context)
            for clip in clips:
                with open(clip.path, "rb") as source:
                    self._builder.add_ingredient(ingredient(clip), VIDEO_MP4, source)
        except (c2pa.C2paError, OSError) as err:
            self.close()
            raise ProvenanceError(f"the film's C2PA manifest cannot be made: {_why(err)}") from None

    def sign(self, stitched: Path, film: Path, stitching: Stitching) -> SignedFilm:
        """Sign ``stitched`` into ``film`` (replaced only when signing succeeded)."""
        partial = film.with_name(f".{film.stem}.{uuid.uuid4().hex[:12]}.signing{film.suffix}")
        try:
            self._builder.add_action(edited_action(stitching, when=self._when))
            with self._credentials.signer() as signer, open(stitched, "rb") as source, open(partial, "w+b") as dest:
                manifest = self._builder.sign(signer, VIDEO_MP4, source, dest)
            os.replace(partial, film)
        except (c2pa.C2paError, OSError) as err:
            raise ProvenanceError(f"signing {printable(film.name, 100)} failed: {_why(err)}") from None
        finally:
            partial.unlink(missing_ok=True)
            self.close()
        return SignedFilm(label=manifest_label(manifest), signer=self._credentials.subject, manifest_bytes=len(manifest))

    def close(self) -> None:
        if getattr(self, "_builder", None) is not None:
            self._builder.close()
        self._context.close()


def sign_film(
    stitched: Path, film: Path, *, title: str, clips: list[FilmClip], stitching: Stitching, credentials: SigningCredentials,
    when: datetime | None = None,
) -> SignedFilm:
    """Sign ``stitched`` into ``film`` in one go."""
    return FilmSigner(title=title, clips=clips, credentials=credentials, when=when).sign(stitched, film, stitching)


def manifest_label(manifest: bytes) -> str:
    """The active manifest's label, read from the manifest store c2pa returned (no second pass
    over the film: the store alone, not validated against it here)."""
    with c2pa.Context.from_dict({"verify": {"verify_after_reading": False}}) as context, c2pa.Reader(
        "application/c2pa", io.BytesIO(manifest), context=context
    ) as reader:
        return json.loads(reader.json())["active_manifest"]


def _why(err: Exception) -> str:
    return str(err) if isinstance(err, c2pa.C2paError) else f"{printable(str(getattr(err, 'filename', '') or ''), 200)} {err.strerror or err}".strip()


__all__ = ["FilmSigner", "SignedFilm", "manifest_label", "sign_film"]
