"""The one reader of JSON lines: lines cut across chunks, numbered as an editor numbers them, with what
is not a JSON object passed over (and, when it is not JSON at all, logged)."""

from __future__ import annotations

import logging

from batches.results.lines import JsonLine, json_objects, split_lines


def test_lines_are_cut_across_chunk_boundaries_and_lose_their_line_endings():
    chunks = [b'{"a": 1}\r\n{"b"', b': 2}\n\n{"c": 3}']
    assert list(split_lines(chunks)) == [(1, b'{"a": 1}'), (2, b'{"b": 2}'), (3, b""), (4, b'{"c": 3}')]


def test_a_file_ending_with_a_newline_has_no_empty_last_line():
    assert list(split_lines([b"x\n", b"y\n"])) == [(1, b"x"), (2, b"y")]


def test_blank_lines_count_but_only_json_objects_are_read():
    chunks = [b'{"custom_id": "a"}\n\n   \n[1, 2]\n{"custom_id": "b", "n": NaN}\n']
    found = list(json_objects(chunks, name="file-1"))
    assert [(line.number, line.obj.get("custom_id"), line.raw) for line in found] == [
        (1, "a", b'{"custom_id": "a"}'),
        (5, "b", b'{"custom_id": "b", "n": NaN}'),
    ]
    assert isinstance(found[0], JsonLine)


def test_a_line_that_is_not_json_is_logged_with_its_file_and_number(caplog):
    chunks = [b'{"ok": true}\nnot json\n' + b"[" * 100_000 + b"\n"]
    with caplog.at_level(logging.WARNING, logger="batches.results.lines"):
        found = list(json_objects(chunks, name="file-9"))
    assert [line.obj for line in found] == [{"ok": True}]
    assert [record.getMessage() for record in caplog.records] == [
        "file file-9 line 2 is not JSON (or nested too deeply); skipped",
        "file file-9 line 3 is not JSON (or nested too deeply); skipped",
    ]
