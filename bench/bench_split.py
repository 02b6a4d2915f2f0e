"""Planning cost of long shots: ``split_seconds`` against the enumeration it replaced, in this process.

The enumeration (every combination of clip lengths, for every part count) is the baseline; it
took over 300 s of CPU for ``seconds: 597`` with the five beyond-spec lengths, a length no split
reaches. The bitset split is linear in the number of parts. Both are timed on the same totals
and checked to give the same split; the ratio is baseline / split.

Run: .venv/bin/python bench/bench_split.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from itertools import combinations_with_replacement
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from soraflow.models.profiles import split_seconds  # noqa: E402

LENGTHS = (4, 8, 12, 16, 20)  # sora-2 with SORAFLOW_ALLOW_BEYOND_SPEC
TOTALS = (100, 160, 161, 199)  # reachable, reachable, unreachable (odd), unreachable


def enumerated(total: int, lengths: tuple[int, ...]) -> list[int] | None:
    """The replaced algorithm, kept here as the baseline."""
    longest = max(lengths)
    for n in range(-(-total // longest), total // min(lengths) + 1):
        best = None
        for combo in combinations_with_replacement(sorted(lengths, reverse=True), n):
            if sum(combo) == total and (best is None or max(combo) - min(combo) < max(best) - min(best)):
                best = combo
        if best is not None:
            return sorted(best, reverse=True)
    return None


def best_of(rounds: int, fn, *args) -> float:
    times = []
    for _ in range(rounds):
        started = time.process_time()
        fn(*args)
        times.append(time.process_time() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{'seconds':>8} {'enumeration s':>14} {'split s':>10} {'ratio':>10}  split")
    for total in TOTALS:
        assert split_seconds(total, LENGTHS) == enumerated(total, LENGTHS), total
        base = best_of(1, enumerated, total, LENGTHS)  # seconds each: one round is enough
        ours = best_of(args.rounds, split_seconds, total, LENGTHS)
        parts = split_seconds(total, LENGTHS)
        shown = f"{len(parts)} parts" if parts else "none reaches it"
        print(f"{total:>8} {base:>14.3f} {ours:>10.5f} {base / max(ours, 1e-9):>10.0f}  {shown}")
    started = time.process_time()
    split_seconds(597, LENGTHS), split_seconds(600, LENGTHS)
    print(f"597 and 600 s (the enumeration: over 300 s of CPU for 597): {time.process_time() - started:.5f} s")


if __name__ == "__main__":
    main()
