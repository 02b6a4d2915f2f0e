"""``soraflow provenance dev-cert`` and ``soraflow verify``: the film's Content Credentials (C2PA).

``verify`` exits 0 when the film is intact as signed (Trusted, or Valid with a signer no trust
list knows, which it says), 1 when validation fails (the media or the manifest changed, or either
is damaged), 3 when the film carries no manifest at all, 2 when FILM cannot be read.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from .. import provenance
from ..errors import InvalidInputError, Problem
from ..settings import Settings
from ..terminal import printable
from ._app import _Commands, app
from ._output import out, report, say

EXIT_INVALID = 1
EXIT_UNSIGNED = 3

provenance_app = typer.Typer(
    cls=_Commands, add_completion=False, help="Content Credentials (C2PA) for films: a development signing certificate."
)
app.add_typer(provenance_app, name="provenance")


@provenance_app.command("dev-cert")
def dev_cert(
    directory: Path = typer.Argument(..., help="Where the chain, the root and the key are written (made if needed)"),
    days: int = typer.Option(90, "--days", help="How long the certificates stay valid (1-825)"),
    force: bool = typer.Option(False, "--force", help="Replace a development chain already in DIRECTORY"),
) -> None:
    """Make a local development certificate chain that signs films, plainly marked UNTRUSTED.

    Prints the `export` lines that make renders sign with it (`eval "$(soraflow provenance
    dev-cert DIR)"`). C2PA readers, `soraflow verify` among them, show such a film as intact but
    its signer untrusted: it is for trying signing out, not for publishing.
    """
    try:
        chain = provenance.make_dev_chain(directory, days=days, force=force)
    except provenance.ProvenanceError as err:  # the user's folder or option: exit 2, as for every wrong input
        report(err)
        raise typer.Exit(2) from None
    say(("development chain: ", "bold yellow"), f"{chain.chain} (key {chain.private_key}, root {chain.root}), valid until "
        f"{chain.expires:%Y-%m-%d}. UNTRUSTED: no trust list knows its root; readers will say so. Not for publishing: "
        "sign published films with a certificate from a C2PA-trusted authority.")
    say(("to sign renders with it: ", "bold"), "run the lines below in your shell, or put them in .env")
    for name, value in chain.environment().items():
        out.print(f"export {name}={shlex.quote(value)}", markup=False, highlight=False, soft_wrap=True)


@app.command()
def verify(
    film: Path = typer.Argument(..., help="A film (MP4) to check: its C2PA manifest against its bytes"),
    trust_anchors: Optional[Path] = typer.Option(
        None, "--trust-anchors", help="PEM file of root certificates to trust (env SORAFLOW_PROVENANCE_TRUST_ANCHORS)"
    ),
) -> None:
    """Check FILM's Content Credentials: validation state, signer, the AI-generation assertion, and
    the clips it was made from (shot, model, seconds). Exits 1 when validation fails, 3 when
    FILM is not signed."""
    anchors_path = trust_anchors or Settings().provenance_trust_anchors
    anchors = _read_anchors(anchors_path) if anchors_path else None
    try:
        reading = provenance.read_film(film, trust_anchors=anchors)
    except OSError as err:
        raise InvalidInputError([Problem("FILM", f"{printable(str(film), 200)} cannot be read: {err.strerror or type(err).__name__}")]) from None
    show(reading)
    if reading.status == "unsigned":
        raise typer.Exit(EXIT_UNSIGNED)
    if not reading.ok:
        raise typer.Exit(EXIT_INVALID)


def show(reading: "provenance.FilmReading") -> None:
    """What verify prints: the verdict, the signer, the AI assertion, the ingredients table."""
    style = {"trusted": "bold green", "valid": "bold green", "invalid": "bold red", "damaged": "bold red", "unsigned": "bold yellow"}[reading.status]
    head, _, rest = reading.verdict().partition(": ")
    say((f"{head}: ", style), rest, to=out)
    if reading.label:
        say(("manifest: ", "bold"), reading.label, to=out)
        say(("signer: ", "bold"), (reading.signer or "unknown") + (f", time-stamped {reading.signed_at}" if reading.signed_at else ""), to=out)
        say(("AI-generated: ", "bold"), reading.ai_line(), to=out)
        say(("claim generator: ", "bold"), reading.claim_generator or "unknown", to=out)
        if reading.title:
            say(("title: ", "bold"), reading.title, to=out)
    for note in reading.notes:
        say(("note: ", "yellow"), note, to=out)
    for finding in reading.failures:
        say(("failure: ", "bold red"), finding.message, to=out)
    if reading.ingredients:
        table = Table(title="ingredients", title_justify="left")
        for col, justify in (("shot", "left"), ("take", "right"), ("part", "right"), ("model", "left"), ("endpoint", "left"), ("seconds", "right"), ("signed by provider", "left")):
            table.add_column(col, justify=justify)
        for i in reading.ingredients:
            cells = (
                i.shot_id or i.title, i.take_text, f"{i.part}/{i.parts}" if i.part else "", i.model or "", _endpoint(i), "" if i.seconds is None else str(i.seconds),
                "yes" if i.own_manifest else "no",
            )
            table.add_row(*(Text(printable(c)) for c in cells))
        out.print(table)


def _endpoint(i) -> str:
    if i.endpoint and i.endpoint_identity and i.endpoint_identity != i.endpoint:
        return f"{i.endpoint} ({i.endpoint_identity})"
    return i.endpoint or ""


def _read_anchors(path: Path) -> bytes:
    try:
        data = Path(path).expanduser().read_bytes()
    except OSError as err:
        raise InvalidInputError([Problem("--trust-anchors", f"{printable(str(path), 200)} cannot be read: {err.strerror or type(err).__name__}")]) from None
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise InvalidInputError([Problem("--trust-anchors", f"{printable(str(path), 200)} holds no PEM certificate")])
    return data


__all__ = ["EXIT_INVALID", "EXIT_UNSIGNED", "dev_cert", "show", "verify"]
