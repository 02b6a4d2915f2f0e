"""The one error of provenance: a signer that cannot sign, or a film that cannot be signed."""

from __future__ import annotations

from ..errors import SoraflowError


class ProvenanceError(SoraflowError):
    """The C2PA signer is unusable or signing failed; the message says why, with no secret in it
    (every ``SoraflowError`` is redacted, and the key is registered where it is read)."""


__all__ = ["ProvenanceError"]
