"""A development chain and two real clips (lavfi, H.264 + AAC), once per session."""

from __future__ import annotations

from pathlib import Path

import ffmpeg
import pytest

from soraflow import provenance
from soraflow.settings import Settings


def make_clip(path: Path, *, tone: int, seconds: float = 1.0, size: str = "320x180") -> Path:
    video = ffmpeg.input(f"testsrc2=s={size}:r=30:d={seconds}", f="lavfi")
    audio = ffmpeg.input(f"sine=f={tone}:r=48000:d={seconds}", f="lavfi")
    ffmpeg.output(video, audio, str(path), vcodec="libx264", preset="ultrafast", pix_fmt="yuv420p", acodec="aac", ac=2).run(
        quiet=True, overwrite_output=True
    )
    return path


@pytest.fixture(scope="session")
def dev_chain(tmp_path_factory) -> provenance.DevChain:
    return provenance.make_dev_chain(tmp_path_factory.mktemp("dev-chain"))


@pytest.fixture(scope="session")
def signing(dev_chain) -> provenance.SigningCredentials:
    return provenance.load_credentials(Settings(provenance_cert_chain=dev_chain.chain, provenance_private_key=dev_chain.private_key))


@pytest.fixture(scope="session")
def two_clips(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("clips")
    return [make_clip(folder / "a.mp4", tone=440), make_clip(folder / "b.mp4", tone=660, seconds=1.5)]
