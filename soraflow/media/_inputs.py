"""One ffmpeg input per use of a clip."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence


def own_inputs(paths: Sequence[str | os.PathLike], work: Path) -> list[str]:
    """A distinct path for every use of a clip, as symlinks in ``work``.

    ffmpeg-python merges inputs (and identical filter chains on them) that have equal
    arguments, so a clip used twice would become one decoded stream split in two, and the
    branch needed later would buffer every raw frame until its turn. Two inputs decode the
    clip twice instead, keeping memory flat.
    """
    folder = work / "inputs"
    folder.mkdir(exist_ok=True)
    out = []
    for i, path in enumerate(paths):
        target = Path(path).resolve()
        link = folder / f"{i:04d}{target.suffix}"
        try:
            link.symlink_to(target)
            out.append(str(link))
        except OSError:  # no symlinks here: the plain path works unless the clip repeats
            out.append(str(target))
    return out
