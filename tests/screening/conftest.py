"""Fixtures of the review page's tests: one set of real takes (ffmpeg MP4s, stored through the
storage layer) per test process, and a review page serving a review of them over HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from soraflow.review import ReviewState, TakeReview
from soraflow.screening import ReviewFolder, ReviewServer, RunControl
from soraflow.settings import Settings
from soraflow.storage import LocalStorage, open_storage

from .reviews import review_of, store_film, store_take, write_state


@dataclass
class Harbour:
    """Takes of shots a (1 take), b (2) and c (2) and a cut, stored in ``store``."""

    store: LocalStorage
    takes: dict[str, list[TakeReview]]
    film_uri: str

    def review(self, out_dir: Path, **options) -> ReviewState:
        return review_of(out_dir, self.store.url, self.takes, film_uri=self.film_uri, **options)


@pytest.fixture(scope="session")
def harbour(tmp_path_factory) -> Harbour:
    root = tmp_path_factory.mktemp("harbour")
    store, work = LocalStorage(root / "store"), root / "work"
    takes = {
        "a": [store_take(store, work, "a", 1, prompt="A harbour at dawn, gulls over the water")],
        "b": [store_take(store, work, "b", 1), store_take(store, work, "b", 2, seed=7)],
        "c": [store_take(store, work, "c", 1), store_take(store, work, "c", 2)],
    }
    return Harbour(store, takes, store_film(store, work))


@pytest.fixture
def review_page(tmp_path) -> Callable[..., "contextmanager[ReviewServer]"]:
    """``with review_page(state, host=..., runs=...) as page:`` serves ``state`` (written to a fresh
    output directory's review.json) on a free port; ``page.folder.out_dir`` is that directory."""

    @contextmanager
    def serve(state_of: Callable[[Path], ReviewState] | None, *, host: str = "127.0.0.1", runs: RunControl | None = None) -> Iterator[ReviewServer]:
        out_dir = tmp_path / "out"
        out_dir.mkdir(exist_ok=True)
        if state_of is not None:
            write_state(out_dir, state_of(out_dir))
        folder = ReviewFolder(out_dir, lambda url: open_storage(url, Settings()))
        with ReviewServer(folder, host=host, port=0, runs=runs) as page:
            yield page

    return serve
