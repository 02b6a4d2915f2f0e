"""Media for simulated jobs: a real H.264 + AAC MP4 with the prompt drawn on it, a WebP
thumbnail and a JPEG spritesheet, made by one ffmpeg run (an ffmpeg-python graph). An
extension's run plays its source clip first (brought to the render's size, frame rate and
sound), then the new segment, so its MP4 is the stitched whole.

Rendering starts when a job is created, on a thread pool sized to the cores, so it overlaps
the job's simulated latency instead of adding to it. Renders are cached on disk by everything
that shows in them (size, seconds, drawn text), and a render already running is shared: twelve
jobs with one prompt cost one ffmpeg run.
"""

from __future__ import annotations

import atexit
import colorsys
import hashlib
import os
import shutil
import subprocess
import tempfile
import textwrap
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import ffmpeg

# Bump when the picture or the encoding changes, so old cache entries are not reused.
RENDER_VERSION = "1"
# Where a take's colour band runs across the frame (shares of the height): clear of the drawn
# text above, the moving dot and clock below, and the bottom-right corner (the background).
BAND_TOP, BAND_HEIGHT = 0.48, 0.12
# How long a first-frame or last-frame image is shown at the clip's start or end.
FRAME_IMAGE_SECONDS = 0.5
FPS = 24
AUDIO_RATE = 48000
SPRITE_COLUMNS, SPRITE_ROWS = 4, 2
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
# Renders yield the CPU to the API: a busy encoder must not make requests time out.
_NICE = ["nice", "-n", "5"] if shutil.which("nice") else []
VARIANT_FILES = {"video": "video.mp4", "thumbnail": "thumbnail.webp", "spritesheet": "spritesheet.jpg"}
MEDIA_TYPES = {"video": "video/mp4", "thumbnail": "image/webp", "spritesheet": "image/jpeg"}


@dataclass(frozen=True)
class SourceClip:
    """A finished clip that a render continues (an extension's source)."""

    path: Path
    digest: str  # identifies the clip's content: a render key or an upload's sha256
    seconds: int  # played for exactly this long: trimmed, or its last frame held
    has_audio: bool
    label: str  # how the render names it: a video id, or "upload #…"


@dataclass(frozen=True)
class RenderSpec:
    """Everything that shows in a render; its ``key`` names the cache entry.

    ``seconds`` is the newly generated part; ``extends`` plays before it. ``first_frame`` and
    ``last_frame`` are images the clip opens and ends on (fitted by ``fit``: crop or pad);
    without ``audio`` the MP4 has no sound track at all."""

    width: int
    height: int
    seconds: int
    lines: tuple[str, ...]
    extends: SourceClip | None = None
    audio: bool = True
    first_frame: bytes | None = field(default=None, repr=False)
    last_frame: bytes | None = field(default=None, repr=False)
    fit: str = "crop"
    look: str = ""  # whose colour the clip takes: its own key, unless made from another's look (a remix)
    # What tells this video apart from others of the same request: "seed 7" (a seed asked for),
    # "take 2" (the second video of a request without a seed); drawn as a coloured band.
    mark: str = ""

    def as_take(self, generation: int) -> "RenderSpec":
        """The ``generation``-th video of this request, where no seed fixes it: a model without a
        seed makes another video each time it is asked (take 1 is the request's plain render)."""
        if generation <= 1 or self.mark:
            return self
        from dataclasses import replace

        return replace(self, mark=f"take {generation}")

    @property
    def colour_key(self) -> str:
        """What picks the clip's colour: a remix keeps its source's, so it carries its look."""
        return self.look or self.key

    @property
    def total_seconds(self) -> int:
        return self.seconds + (self.extends.seconds if self.extends else 0)

    @property
    def key(self) -> str:
        text = "\x1f".join(self.lines)
        identity = f"{RENDER_VERSION}|{self.width}x{self.height}|{self.seconds}|{text}"
        if self.extends is not None:
            identity += f"|after {self.extends.digest}:{self.extends.seconds}:{int(self.extends.has_audio)}"
        if not self.audio:
            identity += "|silent"
        if self.look:
            identity += f"|look {self.look}"
        if self.mark:
            identity += f"|mark {self.mark}"
        for name, image in (("first", self.first_frame), ("last", self.last_frame)):
            if image is not None:
                identity += f"|{name} {hashlib.sha256(image).hexdigest()} {self.fit}"
        return hashlib.sha256(identity.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class RenderedMedia:
    folder: Path

    def path(self, variant: str) -> Path:
        return self.folder / VARIANT_FILES[variant]


def render_spec(
    *,
    prompt: str,
    model: str,
    size: str,
    seconds: int,
    reference: bytes | None = None,
    remixed_from: str | None = None,
    edited_from: str | None = None,
    extends: SourceClip | None = None,
    audio: bool = True,
    first_frame: bytes | None = None,
    last_frame: bytes | None = None,
    fit: str = "crop",
    detail: str | None = None,
    look: str = "",
    seed: int | None = None,
) -> RenderSpec:
    """What a job's clip shows: the prompt's first lines, the request and a short hash of it.

    soraflow prompts open with ``Shot dawn — part 1 of 2``; drawing that line makes every clip
    of a film traceable to its shot. The hash covers the whole prompt, the reference image and
    the source of a remix, edit or extension, so different requests never share a render.
    ``seconds`` is the length generated: for an extension, the part after ``extends``.
    ``detail`` (a Veo request's seed, negative prompt, reference images) goes into the hash.
    ``seed``: the request's seed, drawn as a band of its own colour (the same seed, the same video).
    """
    width, height = (int(v) for v in size.split("x"))
    digest = hashlib.sha256(prompt.encode())
    if reference:
        digest.update(hashlib.sha256(reference).digest())
    for origin in (remixed_from, edited_from, extends and extends.digest, detail):
        if origin:
            digest.update(f"|{origin}".encode())
    body = [line.strip() for line in prompt.splitlines() if line.strip()]
    head = body[0] if body else ""
    chars = max(12, int(width / (_font_size(width, height) * 0.62)))
    wrapped = textwrap.wrap(body[1], width=int(chars * 1.5), max_lines=2, placeholder=" …") if len(body) > 1 else []
    meta = f"{model} · {size} · {'+' if extends else ''}{seconds} s · #{digest.hexdigest()[:10]}"
    if remixed_from:
        meta += f" · remix of {remixed_from}"
    if edited_from:
        meta += f" · edit of {edited_from}"
    if extends:
        meta += f" · extends {extends.label}"
    if not audio:
        meta += " · silent"
    lines = (textwrap.shorten(head, chars, placeholder=" …"), *wrapped, meta)
    mark = f"seed {seed}" if seed is not None else ""
    return RenderSpec(width, height, seconds, lines, extends, audio, first_frame, last_frame, fit, look, mark)


def _font_size(width: int, height: int) -> int:
    return max(14, min(width, height) // 16)


def _tint(spec: RenderSpec) -> str:
    """A dark colour picked by the text, so neighbouring shots differ and white text reads."""
    hue = int(spec.colour_key[:4], 16) / 0xFFFF
    r, g, b = colorsys.hsv_to_rgb(hue, 0.55, 0.32)
    return f"0x{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def band_colour(mark: str) -> tuple[int, int, int]:
    """A bright colour of its own for each take or seed (golden-ratio steps around the hue
    circle, so neighbouring numbers differ most)."""
    kind, _, number = mark.partition(" ")
    offset = 0.0 if kind == "take" else 0.31
    hue = (int(number) * 0.6180339887 + offset) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def _font(name: str) -> dict:
    path = FONT_DIR / name
    return {"fontfile": str(path)} if path.exists() else {"font": "Sans"}


def _graph(spec: RenderSpec, workdir: Path):
    """The ffmpeg-python graph: the new segment (after its source, if any), three outputs."""
    video, audio = _segment(spec, workdir)
    video = _with_frame_images(spec, video, workdir)
    if spec.extends is not None:
        video, audio = _after_source(spec.extends, spec, video, audio)
    return _outputs(video, audio if spec.audio else None, spec.total_seconds)


def _with_frame_images(spec: RenderSpec, video, workdir: Path):
    """The first-frame image over the opening, the last-frame image over the end, each fitted
    to the clip: scaled to cover and centre-cropped, or scaled to fit and padded in black."""
    w, h, secs = spec.width, spec.height, spec.seconds
    shown = min(FRAME_IMAGE_SECONDS, secs / 2)
    for name, image, enable in (
        ("first", spec.first_frame, f"lt(t,{shown})"),
        ("last", spec.last_frame, f"gte(t,{secs - shown})"),
    ):
        if image is None:
            continue
        (workdir / f"{name}.img").write_bytes(image)
        picture = ffmpeg.input(f"{name}.img")
        if spec.fit == "pad":
            picture = picture.filter("scale", w, h, force_original_aspect_ratio="decrease").filter("pad", w, h, "(ow-iw)/2", "(oh-ih)/2")
        else:
            picture = picture.filter("scale", w, h, force_original_aspect_ratio="increase").filter("crop", w, h)
        video = ffmpeg.overlay(video, picture.filter("setsar", 1), enable=enable, eof_action="repeat")
    return video


def _segment(spec: RenderSpec, workdir: Path):
    """The generated part: one colour source with drawn text, and a tone."""
    w, h, secs = spec.width, spec.height, spec.seconds
    fs = _font_size(w, h)
    margin = fs
    video = ffmpeg.input(f"color=c={_tint(spec)}:s={w}x{h}:r={FPS}:d={secs}", f="lavfi")
    tone = 196 + int(spec.key[4:8], 16) % 400
    audio = ffmpeg.input(f"sine=frequency={tone}:sample_rate={AUDIO_RATE}:duration={secs}", f="lavfi").filter("volume", 0.3)

    # Text goes through files: prompts hold characters (: , ' % [) that filter syntax would eat.
    y = margin
    for i, line in enumerate(spec.lines):
        is_head, is_meta = i == 0, i == len(spec.lines) - 1
        size = fs if is_head else int(fs * (0.5 if is_meta else 0.6))
        (workdir / f"line{i}.txt").write_text(line, encoding="utf-8")
        font = "DejaVuSans-Bold.ttf" if is_head else ("DejaVuSansMono.ttf" if is_meta else "DejaVuSans.ttf")
        video = video.drawtext(
            textfile=f"line{i}.txt", expansion="none", fontsize=size, fontcolor="white", x=margin, y=y, **_font(font)
        )
        y += int(size * 1.5)
    offset = spec.extends.seconds if spec.extends else 0  # an extension's clock runs on from its source's
    (workdir / "clock.txt").write_text(f"%{{pts:hms:{offset}}}", encoding="utf-8")
    video = video.drawtext(
        textfile="clock.txt", fontsize=int(fs * 0.6), fontcolor="white", x=margin, y=h - margin - fs, **_font("DejaVuSansMono.ttf")
    )
    if spec.mark:
        # Another take of the same request: a band of the take's (or seed's) colour, named in it.
        band_y, band_h = int(h * BAND_TOP), int(h * BAND_HEIGHT)
        r, g, b = band_colour(spec.mark)
        video = video.drawbox(0, band_y, w, band_h, color=f"0x{r:02x}{g:02x}{b:02x}", t="fill")
        (workdir / "mark.txt").write_text(spec.mark, encoding="utf-8")
        video = video.drawtext(
            textfile="mark.txt", expansion="none", fontsize=int(band_h * 0.6), fontcolor="black", x=margin,
            y=band_y + int(band_h * 0.2), **_font("DejaVuSans-Bold.ttf"),
        )
    # A dot that crosses the frame once per clip, so the picture visibly moves.
    video = video.drawtext(text="●", fontsize=fs, fontcolor="0xe0c080", x=f"(w-tw)*t/{secs}", y=h - 2 * margin - 2 * fs, **_font("DejaVuSans.ttf"))
    return video, audio


def _after_source(source: SourceClip, spec: RenderSpec, video, audio):
    """``source`` at the render's size, frame rate and sound, exactly ``source.seconds`` long
    (an upload may be a little shorter or longer), followed by the new segment."""
    secs = source.seconds
    clip = ffmpeg.input(str(source.path))
    lead_video = (
        clip.video.filter("scale", spec.width, spec.height)
        .filter("setsar", 1)
        .filter("fps", fps=FPS)
        .filter("format", "yuv420p")
        .filter("tpad", stop_mode="clone", stop_duration=secs)
        .trim(duration=secs)
        .setpts("PTS-STARTPTS")
    )
    if not spec.audio:  # a silent extension (Veo's generate_audio false) joins pictures only
        joined = ffmpeg.concat(lead_video, video.filter("setsar", 1).filter("format", "yuv420p"), v=1, a=0).node
        return joined[0], None
    if source.has_audio:
        lead_audio = clip.audio.filter("apad").filter("atrim", duration=secs).filter("asetpts", "PTS-STARTPTS")
    else:
        lead_audio = ffmpeg.input(f"anullsrc=r={AUDIO_RATE}:cl=stereo", f="lavfi", t=secs)
    sound = {"sample_fmts": "fltp", "sample_rates": AUDIO_RATE, "channel_layouts": "stereo"}
    joined = ffmpeg.concat(
        lead_video, lead_audio.filter("aformat", **sound),
        video.filter("setsar", 1).filter("format", "yuv420p"), audio.filter("aformat", **sound),
        v=1, a=1,
    ).node
    return joined[0], joined[1]


def _outputs(video, audio, secs: int):
    """The MP4 (silent when ``audio`` is None), a thumbnail from the middle and a spritesheet
    across the whole clip."""
    copies = video.split()
    main, thumb, sprite = copies[0], copies[1], copies[2]
    frame = min(FPS, FPS * secs // 2)
    thumb = thumb.trim(start_frame=frame, end_frame=frame + 1)
    tiles = SPRITE_COLUMNS * SPRITE_ROWS
    sprite = (
        sprite.filter("fps", fps=f"{tiles}/{secs}")
        .filter("scale", "trunc(iw/10)*2", "trunc(ih/10)*2")
        .filter("tile", f"{SPRITE_COLUMNS}x{SPRITE_ROWS}")
    )
    sound = {"acodec": "aac", "ar": AUDIO_RATE, "ac": 2} if audio is not None else {}
    streams = (main, audio) if audio is not None else (main,)
    outputs = [
        ffmpeg.output(
            *streams, VARIANT_FILES["video"], vcodec="libx264", preset="ultrafast", pix_fmt="yuv420p", r=FPS,
            movflags="+faststart", t=secs, **sound,
        ),
        ffmpeg.output(thumb, VARIANT_FILES["thumbnail"], vcodec="libwebp", vframes=1),
        ffmpeg.output(sprite, VARIANT_FILES["spritesheet"], vframes=1, **{"q:v": 4}),
    ]
    return ffmpeg.merge_outputs(*outputs).global_args("-hide_banner", "-loglevel", "error", "-nostdin").overwrite_output()


_default_cache: Path | None = None
_default_cache_lock = threading.Lock()


def default_cache_dir() -> Path:
    """One temp dir per process, shared by every simulator in it, removed at exit."""
    global _default_cache
    with _default_cache_lock:
        if _default_cache is None:
            _default_cache = Path(tempfile.mkdtemp(prefix="soraflow-sim-renders-"))
            atexit.register(shutil.rmtree, _default_cache, ignore_errors=True)
        return _default_cache


class RenderError(RuntimeError):
    """ffmpeg could not render a clip; carries ffmpeg's message."""


class Renderer:
    """Renders on a thread pool, caches on disk, shares renders already under way."""

    def __init__(self, cache_dir: str | Path | None = None, workers: int | None = None):
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._pool = ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2, thread_name_prefix="sim-render")
        self._lock = threading.Lock()
        self._inflight: dict[str, Future] = {}
        self.rendered = 0
        self.cache_hits = 0
        self.render_seconds = 0.0

    def submit(self, spec: RenderSpec) -> Future:
        """A future of ``RenderedMedia``; already done when the render is cached."""
        folder = self.cache_dir / spec.key
        with self._lock:
            running = self._inflight.get(spec.key)
            if running is not None:
                self.cache_hits += 1
                return running
            if _complete(folder):
                self.cache_hits += 1
                done: Future = Future()
                done.set_result(RenderedMedia(folder))
                return done
            future = self._pool.submit(self._render, spec, folder)
            self._inflight[spec.key] = future
        future.add_done_callback(lambda _f, key=spec.key: self._forget(key))
        return future

    def _forget(self, key: str) -> None:
        with self._lock:
            self._inflight.pop(key, None)

    def _render(self, spec: RenderSpec, folder: Path) -> RenderedMedia:
        if _complete(folder):  # another process sharing the cache got there first
            return RenderedMedia(folder)
        work = self.cache_dir / f".tmp-{spec.key}-{uuid.uuid4().hex[:8]}"
        work.mkdir()
        started = time.perf_counter()
        try:
            args = _NICE + _graph(spec, work).compile()
            proc = subprocess.run(args, cwd=work, capture_output=True, text=True)
            if proc.returncode != 0 or not _complete(work):
                raise RenderError(f"ffmpeg failed to render {spec.width}x{spec.height} {spec.seconds}s: {proc.stderr.strip()[-800:]}")
            for name in ("clock.txt", "mark.txt", *(p.name for p in work.glob("line*.txt")), *(p.name for p in work.glob("*.img"))):
                (work / name).unlink(missing_ok=True)
            try:
                work.rename(folder)  # atomic: readers never see a half-written entry
            except OSError:
                if not _complete(folder):
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
        with self._lock:
            self.rendered += 1
            self.render_seconds += time.perf_counter() - started
        return RenderedMedia(folder)

    def stats(self) -> dict:
        with self._lock:
            return {
                "rendered": self.rendered,
                "cache_hits": self.cache_hits,
                "render_seconds": round(self.render_seconds, 3),
                "in_flight": len(self._inflight),
                "cache_dir": str(self.cache_dir),
            }

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in VARIANT_FILES.values())
