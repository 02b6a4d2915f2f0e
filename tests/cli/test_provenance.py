"""``soraflow provenance dev-cert`` and ``soraflow verify`` as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import ffmpeg
from typer.testing import CliRunner

from soraflow import provenance
from soraflow.cli import app
from soraflow.settings import Settings


def test_dev_cert_prints_the_lines_that_make_renders_sign_and_verify_tells_each_film_apart(tmp_path):
    runner = CliRunner()
    made = runner.invoke(app, ["provenance", "dev-cert", str(tmp_path / "my certs")])
    assert made.exit_code == 0, made.output
    exports = [line for line in made.stdout.splitlines() if line.startswith("export ")]
    assert len(exports) == 2 and "UNTRUSTED" in made.stderr and "Not for publishing" in made.stderr
    # the lines are shell: eval them and the settings see the chain (a folder name with a space survives)
    env = subprocess.run(["sh", "-c", "\n".join(exports) + "\nenv"], capture_output=True, text=True, check=True).stdout
    settings = dict(line.split("=", 1) for line in env.splitlines() if line.startswith("SORAFLOW_PROVENANCE_"))
    signing = provenance.load_credentials(Settings(provenance_cert_chain=settings["SORAFLOW_PROVENANCE_CERT_CHAIN"], provenance_private_key=settings["SORAFLOW_PROVENANCE_PRIVATE_KEY"]))
    again = runner.invoke(app, ["provenance", "dev-cert", str(tmp_path / "my certs")])
    assert again.exit_code == 2 and "pass --force to replace them" in again.stderr

    clip = tmp_path / "clip.mp4"
    ffmpeg.output(ffmpeg.input("testsrc2=s=320x180:r=30:d=1", f="lavfi"), str(clip), vcodec="libx264", preset="ultrafast", pix_fmt="yuv420p").run(quiet=True)
    film = tmp_path / "film.mp4"
    ingredient = provenance.FilmClip(
        path=clip, shot_id="quay", part=1, parts=1, profile="sora-2", model="sora-2", endpoint="openai", endpoint_identity="soraflow-simulator",
        size="320x180", seconds=4, sha256="ab" * 32, clip_key="k",
    )
    provenance.sign_film(clip, film, title="Quay", clips=[ingredient], stitching=provenance.Stitching("copy", "320x180"), credentials=signing)

    ok = runner.invoke(app, ["verify", str(film)])
    assert ok.exit_code == 0, ok.output
    lines = ok.stdout.splitlines()
    assert lines[0].startswith("Valid: the film is intact, as signed; its signer is not on any trust list here")
    assert "signer: soraflow development signer (UNTRUSTED)" in ok.stdout
    assert "AI-generated: yes: c2pa.created, digitalSourceType trainedAlgorithmicMedia" in ok.stdout
    row = ["│", "quay", "│", "1", "│", "1/1", "│", "sora-2", "│", "openai", "│", "4", "│", "no", "│"]  # the identity wraps below the endpoint
    assert any(line.split() == row for line in lines), ok.stdout
    root = Path(settings["SORAFLOW_PROVENANCE_CERT_CHAIN"]).with_name("soraflow-dev-root.pem")
    trusted = runner.invoke(app, ["verify", str(film), "--trust-anchors", str(root)])
    assert trusted.exit_code == 0 and trusted.stdout.startswith("Trusted: the film is intact and its signer is vouched for")

    data = bytearray(film.read_bytes())
    data[data.index(b"mdat") + 500] ^= 0xFF
    (tmp_path / "tampered.mp4").write_bytes(bytes(data))
    bad = runner.invoke(app, ["verify", str(tmp_path / "tampered.mp4")])
    assert bad.exit_code == 1
    assert bad.stdout.startswith("Invalid: the film's media changed after it was signed: its bytes no longer match the signed hash (assertion.bmffHash.mismatch)")

    unsigned = runner.invoke(app, ["verify", str(clip)])
    assert unsigned.exit_code == 3 and unsigned.stdout.startswith("Unsigned: it carries no C2PA manifest")
    missing = runner.invoke(app, ["verify", str(tmp_path / "nothing.mp4")])
    assert missing.exit_code == 2 and "nothing.mp4 cannot be read: No such file or directory" in missing.stderr
    assert "Traceback" not in missing.output + bad.output


def test_verify_runs_as_a_command_and_importing_the_cli_loads_no_c2pa():
    """`soraflow estimate` must stay fast: c2pa and cryptography load only when provenance is used."""
    code = "import sys, soraflow.cli; print('c2pa' in sys.modules, 'cryptography.x509' in sys.modules)"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert shown.stdout.split() == ["False", "False"], shown.stdout
    usage = subprocess.run([sys.executable, "-m", "soraflow.cli", "verify", "--help"], capture_output=True, text=True)
    assert usage.returncode == 0 and "--trust-anchors" in usage.stdout
