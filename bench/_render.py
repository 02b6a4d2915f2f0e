"""The real render flow, timed, for the benchmarks that measure orchestration."""

from __future__ import annotations

import os
import time
from pathlib import Path


def timed_render(storyboard: Path, state_dir: Path, out_dir: Path) -> tuple[float, float]:
    """Run ``render_storyboard`` in this process with its ledger in ``state_dir``; returns the
    wall time and, within it, the seconds spent assembling the film (stitch and contact sheet),
    which the benchmarks count as work, not orchestration."""
    from soraflow import assembly
    from soraflow.flows.render import RenderRequest, render_storyboard

    os.environ["SORAFLOW_STATE_DIR"] = str(state_dir)
    stitch = {}
    real_assemble = assembly.assemble

    def timed(*a, **kw):
        s = time.perf_counter()
        try:
            return real_assemble(*a, **kw)
        finally:
            stitch["s"] = time.perf_counter() - s

    assembly.assemble = timed
    t0 = time.perf_counter()
    try:
        done = render_storyboard(RenderRequest(storyboard_path=str(storyboard), out_dir=str(out_dir)), return_state=True)
    finally:
        assembly.assemble = real_assemble
    assert done.is_completed(), done.message
    return time.perf_counter() - t0, stitch["s"]
