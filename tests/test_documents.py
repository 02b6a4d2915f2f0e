"""Reading user documents within limits: file types, sizes, paths, nesting, numbers, keys."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from soraflow.documents import (
    MAX_DEPTH,
    MAX_DOCUMENT_BYTES,
    DocumentError,
    check_shape,
    parse_document,
    path_problem,
    read_bounded,
)


def refused(fn, *args, **kw) -> str:
    with pytest.raises(DocumentError) as info:
        fn(*args, **kw)
    return str(info.value)


def test_a_fifo_is_refused_at_once_not_waited_on(tmp_path):
    fifo = tmp_path / "storyboard.yaml"
    os.mkfifo(fifo)
    outcome: list[str] = []
    reader = threading.Thread(target=lambda: outcome.append(refused(read_bounded, fifo)), daemon=True)
    reader.start()
    reader.join(timeout=5)
    if reader.is_alive():  # unblock the reader so the test process can end
        with open(fifo, "wb"):
            pass
        pytest.fail("reading a FIFO blocked")
    assert "FIFO" in outcome[0] and "not a regular file" in outcome[0]


@pytest.mark.parametrize("path, kind", [("/dev/zero", "character device"), ("/", "directory")])
def test_devices_and_directories_are_refused_by_type(path, kind):
    assert kind in refused(read_bounded, path)


def test_a_file_over_the_limit_is_refused_without_reading_it_all(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_DOCUMENT_BYTES + 1))
    assert "larger than" in refused(read_bounded, big)
    fits = tmp_path / "fits.yaml"
    fits.write_bytes(b"#" * MAX_DOCUMENT_BYTES)
    assert len(read_bounded(fits)) == MAX_DOCUMENT_BYTES


def test_paths_too_long_for_the_system_are_refused_with_the_figure(tmp_path):
    assert "5000 bytes long" in path_problem("a/" * 2500)
    assert "name of 305 bytes" in path_problem(tmp_path / ("x" * 300 + ".yaml"))
    assert "NUL" in path_problem("a\x00b")
    assert "300 bytes" in refused(read_bounded, tmp_path / ("x" * 300))
    assert "no such file" in refused(read_bounded, tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    "text, json_only",
    [("[" * 10_000 + "]" * 10_000, False), ("[" * 10_000 + "]" * 10_000, True), ("a: " + "{b: " * 40 + "1" + "}" * 40, False)],
)
def test_deep_nesting_is_refused_cleanly(text, json_only):
    message = refused(parse_document, text, json_only=json_only)
    assert f"nested more than {MAX_DEPTH} levels" in message


def test_nesting_within_the_limit_parses():
    depth = MAX_DEPTH - 1
    assert parse_document("[" * depth + "1" + "]" * depth) is not None


@pytest.mark.parametrize("text, json_only", [("n: " + "9" * 4400, False), ('{"n": ' + "9" * 4400 + "}", True), ("n: 0x" + "f" * 40, False)])
def test_huge_integers_are_refused_before_conversion(text, json_only):
    assert "digits" in refused(parse_document, text, json_only=json_only)


@pytest.mark.parametrize("text, json_only", [('{"n": NaN}', True), ('{"n": -Infinity}', True), ("n: .inf", False), ("n: .nan", False)])
def test_non_finite_numbers_are_refused(text, json_only):
    assert "finite" in refused(parse_document, text, json_only=json_only)


def test_duplicate_yaml_keys_name_both_lines():
    text = "title: t\nshots:\n  - id: a\n    seconds: 4\n    visual: v\n    seconds: 12\n"
    message = refused(parse_document, text)
    assert "'seconds' appears twice, on line 4 and on line 6" in message


def test_duplicate_json_keys_are_refused():
    assert "'seconds' appears twice" in refused(parse_document, '{"seconds": 4, "seconds": 12}', json_only=True)


def test_yaml_merge_keys_still_override_without_being_duplicates():
    data = parse_document("base: &b {seconds: 4, visual: v}\nshot:\n  <<: *b\n  seconds: 8\n")
    assert data["shot"] == {"seconds": 8, "visual": "v"}


def test_an_alias_bomb_is_refused_by_its_expanded_size():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    assert "more than" in refused(parse_document, "\n".join(lines) + "\n")


def test_a_recursive_alias_is_refused():
    assert "nested more than" in refused(parse_document, "a: &a [*a]\n")


def test_control_characters_the_yaml_reader_refuses_are_reported_cleanly():
    assert "not allowed" in refused(parse_document, "title: a\x00b\n")


def test_inline_data_gets_the_same_limits():
    deep: list = []
    cursor = deep
    for _ in range(MAX_DEPTH + 5):
        cursor.append([])
        cursor = cursor[0]
    assert "nested" in refused(check_shape, {"shots": deep})
    assert "digits" in refused(check_shape, {"seconds": 10**200})
    assert "finite" in refused(check_shape, {"seconds": float("nan")})


def test_read_bounded_reads_a_normal_file(tmp_path: Path):
    f = tmp_path / "s.yaml"
    f.write_text("title: t\n")
    assert parse_document(read_bounded(f).decode()) == {"title": "t"}
