"""Reviews to serve: real MP4s made by ffmpeg, stored through the storage layer, and the
``review.json`` the render flow writes (``soraflow.review.ReviewState``)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import uuid
from decimal import Decimal
from pathlib import Path

from soraflow.review import REVIEW_STATE_NAME, ReviewState, ShotReview, TakeReview
from soraflow.storage import Storage, clip_object_key, film_object_key

TITLE = "The Harbour"
# One colour per take, far apart, so a picture says which take it is.
TAKE_COLOURS = {1: "0x2060c0", 2: "0xc03020", 3: "0x20a040", 4: "0xd0a020"}


def make_clip(path: Path, colour: str, *, seconds: float = 2, size: str = "320x180", label: str = "", grain: bool = False) -> Path:
    """An H.264 + AAC MP4 of one colour with ``label`` drawn on it (``grain``: noise that makes it
    large, so a browser cannot hold all of it at once), moov first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    video = f"color=c={colour}:s={size}:r=24:d={seconds}"
    filters = []
    if grain:
        filters.append("noise=alls=60:allf=t")
    if label:
        filters.append(f"drawtext=text='{label}':fontcolor=white:fontsize=28:x=10:y=10")
    args = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", video, "-f", "lavfi", "-i", f"sine=frequency=330:duration={seconds}"]
    if filters:
        args += ["-vf", ",".join(filters)]
    quality = ["-b:v", "6M", "-maxrate", "6M", "-bufsize", "2M"] if grain else []
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", *quality, "-c:a", "aac", "-t", str(seconds),
             "-movflags", "+faststart", str(path)]
    subprocess.run(args, check=True)
    return path


def store_take(store: Storage, work: Path, shot: str, take: int, *, prompt: str | None = None, seed: int | None = None,
               price: str = "0.40", seconds: int = 2) -> TakeReview:
    """A take of ``shot`` made, stored under its clip key, and described as the review shows it."""
    clip_key = hashlib.sha256(f"{shot}/{take}/{prompt}/{seed}/{uuid.uuid4()}".encode()).hexdigest()
    local = make_clip(work / f"{shot}-{take}.mp4", TAKE_COLOURS[(take - 1) % 4 + 1], seconds=seconds, label=f"{shot} take {take}")
    stored = store.put_file(local, clip_object_key(TITLE, shot, take, clip_key), content_type="video/mp4", metadata={})
    return TakeReview(
        take=take, clip_key=clip_key, profile="sora-2", model="sora-2", endpoint="simulator", seconds=seconds,
        price_usd=Decimal(price), prompt=prompt, seed=seed, state="completed", job_id=f"video_{clip_key[:12]}",
        storage_uri=stored.uri,
    )


def store_film(store: Storage, work: Path, *, seconds: float = 2, grain: bool = False) -> str:
    local = make_clip(work / "film.mp4", "0x404040", seconds=seconds, size="640x360" if grain else "320x180", label="film", grain=grain)
    return store.put_file(local, film_object_key(TITLE, "film.mp4"), content_type="video/mp4", metadata={}).uri


def write_state(out_dir: Path, state: ReviewState) -> Path:
    """``review.json`` written as the flow writes it: replaced whole, never seen half written."""
    path = out_dir / ".work" / REVIEW_STATE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(state.model_dump_json(indent=2))
    os.replace(tmp, path)
    return path


def review_of(out_dir: Path, storage_url: str, shots: dict[str, list[TakeReview]], *, chosen: dict[str, int] | None = None,
              flow_run_id: str | None = None, film_uri: str | None = None, round: int = 1) -> ReviewState:
    chosen = chosen or {}
    takes = [t for ts in shots.values() for t in ts]
    return ReviewState(
        title=TITLE, storyboard="harbour", flow_run_id=flow_run_id, out_dir=str(out_dir), storage_url=storage_url,
        film_uri=film_uri, shots=[ShotReview(shot=s, chosen=chosen.get(s, 1), takes=ts) for s, ts in shots.items()],
        spent_usd=sum((t.price_usd for t in takes if t.storage_uri), Decimal("0")), round=round,
    )
