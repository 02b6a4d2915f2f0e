"""Provenance: the film signed with a C2PA manifest (Content Credentials), and read back.

The film says, verifiably, that AI made it and from which clips: a ``c2pa.created`` action with
the digital source type ``trainedAlgorithmicMedia``, ``c2pa.placed`` and ``c2pa.edited`` for
the stitching, one ingredient per clip (shot, part, model, endpoint identity, sha256; a clip
its provider signed brings its own manifest along), the storyboard's title, soraflow as the
claim generator and the time. Nothing secret goes in: no key, no credentialed URL, and no
prompt unless the storyboard asks (``provenance: {include_prompts: true}``).

- ``definition``: the manifest definition, from the plan and the stored clips (plain data);
- ``credentials``: the signer, from settings (PEM chain and key, or the key in a Prefect Secret
  block read by the caller), checked before anything is paid;
- ``signing``: the film signed as its last write, streamed from file to file;
- ``reading``: what ``soraflow verify`` and the flow's artifact say about a film;
- ``dev_chain``: a development certificate chain, plainly marked untrusted.

Everything c2pa does is c2pa-python's (the Content Authenticity Initiative's bindings of
c2pa-rs); nothing here writes JUMBF or hashes media by hand. No Prefect here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ..settings import Settings
from .errors import ProvenanceError

# c2pa (a native library) and cryptography take a fifth of a second to import: the package
# loads them when one of their names is first used (PEP 562), so `soraflow estimate` and a
# render with no signer configured never pay for them.
_LAZY = {
    "SigningCredentials": "credentials",
    "credentials_problem": "credentials",
    "load_credentials": "credentials",
    "signer_identity": "credentials",
    "FilmClip": "definition",
    "Stitching": "definition",
    "film_clips": "definition",
    "film_definition": "definition",
    "DevChain": "dev_chain",
    "make_dev_chain": "dev_chain",
    "FilmReading": "reading",
    "read_film": "reading",
    "FilmSigner": "signing",
    "SignedFilm": "signing",
    "sign_film": "signing",
}
HOW_TO_CONFIGURE = (
    "set SORAFLOW_PROVENANCE_CERT_CHAIN (PEM chain) and SORAFLOW_PROVENANCE_PRIVATE_KEY (PEM key file) or "
    "SORAFLOW_PROVENANCE_PRIVATE_KEY_SECRET (a Prefect Secret block), or make a development chain with "
    "`soraflow provenance dev-cert DIR`"
)

if TYPE_CHECKING:
    from .credentials import SigningCredentials, credentials_problem, load_credentials, signer_identity
    from .definition import FilmClip, Stitching, film_clips, film_definition
    from .dev_chain import DevChain, make_dev_chain
    from .reading import FilmReading, read_film
    from .signing import FilmSigner, SignedFilm, sign_film


def signer_configured(settings: Settings) -> bool:
    """Whether any signer setting is given (then it must be usable, required or not)."""
    return bool(settings.provenance_cert_chain or settings.provenance_private_key or settings.provenance_private_key_secret)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted([*_LAZY, "HOW_TO_CONFIGURE", "ProvenanceError", "signer_configured"])
