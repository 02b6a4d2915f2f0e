"""One output directory's review: its state as the render flow last wrote it, and the run's own
media files, reached through the storage layer."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from ..documents import DocumentError, read_bounded
from ..errors import SoraflowError
from ..review import REVIEW_STATE_NAME, ReviewState, TakeReview
from ..storage import LocalStorage, Storage
from ..terminal import printable

# A review of 500 shots with a few takes each and their prompts is well under this.
MAX_STATE_BYTES = 8 * 1024 * 1024


class ReviewUnavailable(SoraflowError):
    """There is no review to show (yet): the run has not stopped for one, or its file is being
    rewritten or is not a review."""


class ReviewTargetError(SoraflowError):
    """``soraflow review`` was given something that is neither an output directory nor a flow run
    that wrote one."""


class ReviewFolder:
    """The review of the render whose output directory is ``out_dir``.

    ``open_store`` opens the store behind a storage URL (``storage.open_storage`` with the
    caller's settings and AWS session); stores are opened once per URL.
    """

    def __init__(self, out_dir: str | Path, open_store: Callable[[str], Storage]):
        self.out_dir = Path(out_dir).expanduser().resolve()
        self.state_path = self.out_dir / ".work" / REVIEW_STATE_NAME
        self._open_store = open_store
        self._out_store = LocalStorage(self.out_dir)
        self._stores: dict[str, Storage] = {}
        self._lock = threading.Lock()

    def load(self) -> ReviewState:
        """The review as the flow last wrote it; ReviewUnavailable when there is none to show."""
        return read_review(self.out_dir)

    def media(self, state: ReviewState, uri: str | None) -> tuple[Storage, str] | None:
        """The store and key of ``uri``, a file the review names, when it is one of the run's own:
        an object of the run's storage, or a file under its output directory. None otherwise."""
        if not uri:
            return None
        for store in (self.store(state.storage_url), self._out_store):
            if (key := store.key_of(uri)) is not None:
                return store, key
        return None

    def store(self, url: str) -> Storage:
        """The store behind ``url``, opened once (an S3 client is built once, not per request)."""
        with self._lock:
            if url not in self._stores:
                self._stores[url] = self._open_store(url)
            return self._stores[url]


def read_review(out_dir: Path) -> ReviewState:
    """The review in ``out_dir`` (``.work/review.json``), read within a size limit; ReviewUnavailable
    when there is none, or it is not one."""
    path = Path(out_dir) / ".work" / REVIEW_STATE_NAME
    try:
        data = read_bounded(path, limit=MAX_STATE_BYTES)
    except DocumentError as err:
        if not path.exists():
            raise ReviewUnavailable(
                f"no review in {printable(out_dir, 200)} yet: the render writes it when it stops for a review "
                "(review: true in the storyboard, or render --review)"
            ) from None
        raise ReviewUnavailable(f"the review cannot be read: {err}") from None
    try:
        return ReviewState.model_validate_json(data)
    except ValidationError as err:
        # The flow replaces the file as retakes are stored; a reader may see it mid-write.
        raise ReviewUnavailable(
            f"{printable(path, 200)} is not a review state ({err.error_count()} problem(s)); the page reads it again in a moment"
        ) from None


def find_take(state: ReviewState, shot: str, take: int) -> TakeReview | None:
    for shot_review in state.shots:
        if shot_review.shot == shot:
            return next((t for t in shot_review.takes if t.take == take), None)
    return None
