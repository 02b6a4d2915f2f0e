"""What the command line prints: results on stdout, messages on stderr, never read as markup."""

from __future__ import annotations

import traceback

from rich.console import Console
from rich.text import Text

from ..redaction import redact_text
from ..terminal import printable

console = Console(stderr=True)
out = Console()
_debug = False


def set_debug(debug: bool) -> None:
    global _debug
    _debug = debug


def debugging() -> bool:
    """Whether ``--debug`` was given: tracebacks and Prefect's own log lines are shown."""
    return _debug


def say(*parts: str | tuple[str, str], to: Console = console) -> None:
    """Print a line of labels (``(text, style)``, ours) and text from users or providers (plain
    strings): never read as rich markup, so a provider code like ``[moderation_blocked]`` or a
    title with brackets prints as it is, and every control character escaped."""
    pieces = [part if isinstance(part, tuple) else printable(part, keep_newlines=True) for part in parts]
    to.print(Text.assemble(*pieces), highlight=False, soft_wrap=True)


def report(err: BaseException, head: str = "error: ") -> None:
    if _debug:
        console.print(redact_text("".join(traceback.format_exception(err))), markup=False, highlight=False)
    say((head, "bold red"), redact_text(str(err)))
