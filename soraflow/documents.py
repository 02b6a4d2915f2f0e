"""Reading the YAML and JSON documents users write (storyboards, and any other input file) with
limits, so that no input can hang soraflow, exhaust its memory or end in a traceback.

- Only regular files are read, and at most ``MAX_DOCUMENT_BYTES`` of them: a FIFO, a device
  (``/dev/zero``) or a directory is refused without being opened for a blocking read.
- Paths longer than the system allows are refused with the figure, not an ``OSError``.
- Nesting is bounded (``MAX_DEPTH``) while the YAML is composed, before Python recursion could
  overflow; JSON is bounded the same way once parsed.
- Numbers: integers of more than ``MAX_INT_DIGITS`` digits and non-finite numbers are refused
  (Python refuses to convert integers of 4,300+ digits with a bare ``ValueError``).
- Keys must not repeat: YAML's silent last-wins turned ``seconds: 4`` … ``seconds: 12`` into
  three times the price. Both lines are named.
- YAML aliases are allowed, but the document as expanded must stay under ``MAX_NODES`` values.

Every refusal is a ``DocumentError`` carrying one ``Problem`` (where, what, what is allowed).
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, ScalarNode

from .errors import Problem, SoraflowError

MAX_DOCUMENT_BYTES = 512 * 1024  # a 500-shot storyboard with long prompts is about 250 KB
MAX_DEPTH = 32  # a storyboard nests 5 levels deep
MAX_NODES = 100_000  # values in the document once YAML aliases are expanded
MAX_INT_DIGITS = 30
MAX_PATH_BYTES = 4096  # PATH_MAX on Linux
MAX_NAME_BYTES = 255  # NAME_MAX: one component of a path


class DocumentError(SoraflowError):
    """A document that cannot be read or parsed within the limits."""

    def __init__(self, problem: Problem):
        self.problem = problem
        super().__init__(str(problem))


# ----------------------------------------------------------------------------------------------
# paths and files
# ----------------------------------------------------------------------------------------------


def path_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot name a file on this system (too long, NUL byte), or None."""
    text = os.fspath(path)
    if "\x00" in text:
        return "contains a NUL character"
    size = len(text.encode("utf-8", "surrogateescape"))
    if size > MAX_PATH_BYTES:
        return f"is {size} bytes long; a path may have at most {MAX_PATH_BYTES}"
    longest = max((len(part.encode("utf-8", "surrogateescape")) for part in text.split("/")), default=0)
    if longest > MAX_NAME_BYTES:
        return f"has a name of {longest} bytes; each name in a path may have at most {MAX_NAME_BYTES}"
    return None


def open_regular_file(path: str | os.PathLike) -> int:
    """A read-only descriptor on ``path`` if it is a regular file; DocumentError otherwise.

    Opened non-blocking, so a FIFO with no writer is refused at once instead of waiting forever;
    a device, socket or directory is refused by its type before a byte is read.
    """
    if problem := path_problem(path):
        raise DocumentError(Problem("", f"the path {problem}"))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        raise DocumentError(Problem("", _os_problem(err, path))) from None
    try:
        kind = _file_kind(os.fstat(fd).st_mode)
    except OSError as err:  # pragma: no cover - fstat on an open descriptor does not fail in practice
        os.close(fd)
        raise DocumentError(Problem("", _os_problem(err, path))) from None
    if kind != "regular file":
        os.close(fd)
        raise DocumentError(Problem("", f"{path} is a {kind}, not a regular file"))
    return fd


def read_bounded(path: str | os.PathLike, limit: int = MAX_DOCUMENT_BYTES) -> bytes:
    """The bytes of the regular file ``path``, refused when larger than ``limit``."""
    fd = open_regular_file(path)
    try:
        with os.fdopen(fd, "rb", closefd=True) as fh:
            data = fh.read(limit + 1)
    except OSError as err:
        raise DocumentError(Problem("", _os_problem(err, path))) from None
    if len(data) > limit:
        raise DocumentError(Problem("", f"{path} is larger than {limit // 1024} KiB; a document may be at most that"))
    return data


def _file_kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "regular file"
    for test, name in (
        (stat.S_ISDIR, "directory"),
        (stat.S_ISFIFO, "FIFO (named pipe)"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "special file"


def _os_problem(err: OSError, path: str | os.PathLike) -> str:
    if err.errno == errno.ENOENT:
        return f"no such file: {path}"
    if err.errno == errno.EISDIR:
        return f"{path} is a directory, not a regular file"
    return f"cannot read {path}: {err.strerror or type(err).__name__}"


# ----------------------------------------------------------------------------------------------
# parsing
# ----------------------------------------------------------------------------------------------


def parse_document(text: str, *, json_only: bool = False) -> Any:
    """Parse YAML (or, with ``json_only``, strict JSON) within the limits; DocumentError otherwise."""
    data = _parse_json(text) if json_only else _parse_yaml(text)
    check_shape(data)
    return data


def check_shape(data: Any, where: str = "") -> None:
    """Refuse data nested deeper than MAX_DEPTH, larger than MAX_NODES values (aliases
    expanded), or holding a non-finite number. Iterative: no recursion whatever the input."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    nodes = 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise DocumentError(Problem(where, f"more than {MAX_NODES} values (YAML aliases count each time they are used)"))
        if depth > MAX_DEPTH:
            raise DocumentError(Problem(where, f"nested more than {MAX_DEPTH} levels deep"))
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
            stack.extend((k, depth + 1) for k in value if not isinstance(k, str))
        elif isinstance(value, (list, tuple)):
            stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, float) and not math.isfinite(value):
            raise DocumentError(Problem(where, f"{value!r} is not allowed: numbers must be finite"))
        elif isinstance(value, int) and not isinstance(value, bool) and _too_many_digits(value):
            raise DocumentError(Problem(where, f"an integer has more than {MAX_INT_DIGITS} digits"))


def _too_many_digits(value: int) -> bool:
    # bit_length, not str(): converting a huge int to text is what must not happen.
    return value.bit_length() > MAX_INT_DIGITS * 3.33


# --- JSON -------------------------------------------------------------------------------------


class _JsonRefusal(Exception):
    pass


def _json_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise _JsonRefusal(f"an integer of {digits} digits; at most {MAX_INT_DIGITS} are allowed")
    return int(text)


def _json_constant(name: str) -> float:
    raise _JsonRefusal(f"{name} is not allowed: numbers must be finite")


def _json_object(pairs: list[tuple[str, Any]]) -> dict:
    obj: dict = {}
    for key, value in pairs:
        if key in obj:
            raise _JsonRefusal(f"key {key!r} appears twice in the same object; keys must be unique")
        obj[key] = value
    return obj


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text, parse_int=_json_int, parse_constant=_json_constant, object_pairs_hook=_json_object)
    except json.JSONDecodeError as err:
        raise DocumentError(Problem("", f"not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}")) from None
    except _JsonRefusal as err:
        raise DocumentError(Problem("", f"not accepted JSON: {err}")) from None
    except RecursionError:
        # The C decoder recurses per level; check_shape bounds whatever parses.
        raise DocumentError(Problem("", f"not accepted JSON: nested more than {MAX_DEPTH} levels deep")) from None


# --- YAML -------------------------------------------------------------------------------------


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with a depth bound while composing (the composer recurses once per
    level), duplicate keys refused, and integers bounded before Python converts them."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        if isinstance(node, MappingNode):
            seen: dict[Any, ScalarNode] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node)
                try:
                    first = seen.setdefault(key, key_node)
                except TypeError:  # unhashable: the base class says so
                    continue
                if first is not key_node:
                    raise ConstructorError(
                        None,
                        None,
                        f"key {key!r} appears twice, on line {first.start_mark.line + 1} and on line "
                        f"{key_node.start_mark.line + 1}; keys must be unique (remove one)",
                        key_node.start_mark,
                    )
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node):
        digits = sum(ch.isalnum() for ch in str(node.value))
        if digits > MAX_INT_DIGITS:
            raise ConstructorError(None, None, f"an integer of {digits} digits; at most {MAX_INT_DIGITS} are allowed", node.start_mark)
        return super().construct_yaml_int(node)


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)
_BoundedLoader.add_constructor("tag:yaml.org,2002:map", _BoundedLoader.construct_yaml_map)


def _parse_yaml(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.reader.ReaderError as err:
        raise DocumentError(Problem("", f"not valid YAML: character {err.character!r} at position {err.position} is not allowed")) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        raise DocumentError(Problem("", f"not valid YAML{where}: {problem}")) from None
    except RecursionError:  # pragma: no cover - the composer's bound comes first
        raise DocumentError(Problem("", f"not accepted YAML: nested more than {MAX_DEPTH} levels deep")) from None


__all__ = [
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "MAX_INT_DIGITS",
    "MAX_NODES",
    "DocumentError",
    "check_shape",
    "open_regular_file",
    "parse_document",
    "path_problem",
    "read_bounded",
]
