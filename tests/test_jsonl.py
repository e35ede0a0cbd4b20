"""The streaming JSONL validator: every rule, with line numbers, on bad files of each kind."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batches import jsonl, jsonl_lines
from batches.jsonl import validate_jsonl

CHAT = "/v1/chat/completions"


def line(custom_id="r1", *, url=CHAT, method="POST", model="gpt-4o-mini", **extra) -> str:
    obj = {"custom_id": custom_id, "method": method, "url": url, "body": {"model": model, "messages": []}}
    obj.update(extra)
    return json.dumps(obj)


def good_file(n=3, *, newline="\n", trailing=True) -> bytes:
    text = newline.join(line(f"r{i}") for i in range(n))
    return (text + (newline if trailing else "")).encode()


def check(data: bytes, endpoint=CHAT):
    return validate_jsonl(io.BytesIO(data), endpoint=endpoint, size=len(data))


def messages(result) -> str:
    return " | ".join(f"{e.line}: {e.message}" for e in result.errors)


def test_a_valid_file_passes_and_reports_its_url_model_and_count():
    result = check(good_file(3))
    assert result.ok, messages(result)
    assert (result.requests, result.url, result.model) == (3, CHAT, "gpt-4o-mini")


def test_the_endpoint_is_taken_from_the_file_when_none_is_chosen():
    result = check(good_file(2), endpoint=None)
    assert result.ok and result.url == CHAT


def test_an_unknown_url_is_refused_when_the_endpoint_comes_from_the_file():
    result = check((line(url="/v1/unknown") + "\n").encode(), endpoint=None)
    assert not result.ok and "not a Batch API endpoint" in messages(result)


def test_crlf_line_endings_are_accepted():
    assert check(good_file(3, newline="\r\n")).ok


def test_a_missing_final_newline_and_trailing_blank_lines_are_accepted():
    assert check(good_file(2, trailing=False)).ok
    assert check(good_file(2) + b"\n\r\n\n").ok


def test_a_blank_line_between_requests_is_an_error_with_its_line_number():
    data = (line("a") + "\n\n" + line("b") + "\n").encode()
    result = check(data)
    assert [e.line for e in result.errors] == [2]


def test_an_empty_file_is_refused():
    result = check(b"")
    assert not result.ok and "empty" in messages(result)


def test_a_file_of_only_blank_lines_is_refused():
    result = check(b"\n\n\r\n")
    assert not result.ok and "no requests" in messages(result)


def test_a_binary_file_is_refused():
    result = check(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    assert not result.ok and "binary" in messages(result)


def test_a_byte_order_mark_is_refused_with_a_clear_message():
    result = check(jsonl.BOM + good_file(2))
    assert not result.ok
    assert "byte order mark" in messages(result) and result.errors[0].line == 1


def test_invalid_utf8_is_reported_with_its_line_number():
    data = good_file(1) + line("r9").replace("r9", "r\xe99").encode("latin-1") + b"\n"
    result = check(data)
    assert [e.line for e in result.errors] == [2] and "UTF-8" in messages(result)


def test_a_line_that_is_not_json_is_reported():
    result = check(good_file(1) + b"{not json\n")
    assert [e.line for e in result.errors] == [2] and "not valid JSON" in messages(result)


def test_a_line_error_names_its_line_once():
    result = check(good_file(1) + b"{not json\n" + b"\n" + line("r1").encode() + b"\n")
    for error in result.errors:
        assert not error.message.lower().startswith("line"), error.message
        assert error.text.startswith(f"Line {error.line} ") and error.text.lower().count(f"line {error.line} ") == 1
    assert result.errors[0].text.startswith("Line 2 is not valid JSON: ")


@pytest.mark.parametrize("value, kind", [("[1, 2]", "an array"), ('"text"', "a string"), ("42", "a number"), ("null", "null")])
def test_a_line_that_is_not_an_object_is_reported(value, kind):
    result = check(good_file(1) + value.encode() + b"\n")
    assert [e.line for e in result.errors] == [2] and f"is {kind}, not a JSON object" in messages(result)


def test_a_missing_custom_id_is_reported():
    obj = json.loads(line())
    del obj["custom_id"]
    result = check((json.dumps(obj) + "\n").encode())
    assert "has no custom_id" in messages(result)


def test_a_custom_id_that_is_not_a_string_is_reported():
    result = check((line(custom_id=7) + "\n").encode())
    assert "not a non-empty string" in messages(result)


def test_a_duplicate_custom_id_names_both_lines():
    data = (line("a") + "\n" + line("b") + "\n" + line("a") + "\n").encode()
    result = check(data)
    assert [e.line for e in result.errors] == [3]
    assert "first used on line 1" in messages(result)


def test_a_method_other_than_post_is_reported():
    result = check((line(method="GET") + "\n").encode())
    assert "only POST" in messages(result)


def test_a_url_that_differs_from_the_chosen_endpoint_is_reported():
    result = check(good_file(1), endpoint="/v1/embeddings")
    assert [e.line for e in result.errors] == [1] and "chosen endpoint is /v1/embeddings" in messages(result)


def test_a_url_that_differs_from_the_first_lines_url_is_reported():
    data = (line("a") + "\n" + line("b", url="/v1/embeddings") + "\n").encode()
    result = check(data, endpoint=None)
    assert [e.line for e in result.errors] == [2] and "same url" in messages(result)


def test_a_body_that_is_not_an_object_is_reported():
    obj = json.loads(line())
    obj["body"] = "hello"
    result = check((json.dumps(obj) + "\n").encode())
    assert "body that is a string" in messages(result)


def test_two_models_in_one_file_are_reported():
    data = (line("a") + "\n" + line("b", model="gpt-4.1") + "\n").encode()
    result = check(data)
    assert [e.line for e in result.errors] == [2] and "only one model" in messages(result)


def test_too_many_requests_are_reported_once(monkeypatch):
    monkeypatch.setattr(jsonl, "MAX_REQUESTS", 5)
    result = check(good_file(8))
    assert result.error_count == 1 and result.errors[0].line == 6
    assert "more than 5 requests" in messages(result)


def test_a_file_over_the_size_limit_is_refused_before_reading(monkeypatch):
    monkeypatch.setattr(jsonl, "MAX_BYTES", 100)
    result = check(good_file(5))
    assert not result.ok and "at most 200 MB" in messages(result)


def test_an_overlong_line_is_reported_and_the_next_line_is_still_checked(monkeypatch):
    monkeypatch.setattr(jsonl, "MAX_LINE_BYTES", 500)
    result = check(b"{}" * 400 + b"\n" + (line("x", method="GET") + "\n").encode())
    assert [e.line for e in result.errors] == [1, 2]
    assert "longer than" in result.errors[0].message and "only POST" in result.errors[1].message


def test_only_the_first_errors_are_listed_but_all_are_counted():
    data = b"".join(b"[%d]\n" % i for i in range(50))
    result = check(data)
    assert len(result.errors) == jsonl.MAX_LISTED_ERRORS
    assert result.error_count == 50 and result.more_errors == 30


# ---------------------------------------------------------------------------
# Property: a file built from valid requests passes; breaking one line is reported at that line
# ---------------------------------------------------------------------------

ids = st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=30, unique=True)


@settings(max_examples=60, deadline=None)
@given(ids=ids, crlf=st.booleans(), trailing_blanks=st.integers(0, 3))
def test_any_file_of_valid_requests_passes(ids, crlf, trailing_blanks):
    newline = "\r\n" if crlf else "\n"
    text = newline.join(line(i) for i in ids) + newline * trailing_blanks
    result = check(text.encode("utf-8"))
    assert result.ok, messages(result)
    assert result.requests == len(ids)


@settings(max_examples=60, deadline=None)
@given(ids=ids, data=st.data())
def test_a_duplicated_custom_id_is_reported_at_the_repeating_line(ids, data):
    repeat = data.draw(st.sampled_from(ids))
    lines = [line(i) for i in ids] + [line(repeat)]
    result = check(("\n".join(lines) + "\n").encode())
    assert [e.line for e in result.errors] == [len(ids) + 1]


# ---------------------------------------------------------------------------
# The incremental validator (fed chunk by chunk while an upload arrives) agrees with the line-by-line
# validator it replaced (tests/jsonl_reference.py), whatever the chunk boundaries and JSON parser.
# ---------------------------------------------------------------------------

from contextlib import contextmanager  # noqa: E402
from unittest import mock  # noqa: E402

from hypothesis import HealthCheck  # noqa: E402

from batches.jsonl import JsonlValidator  # noqa: E402

from tests.jsonl_reference import reference_validate_jsonl  # noqa: E402

try:
    import orjson  # noqa: F401

    PARSERS = ["json", "orjson"]
except ImportError:  # requirements.txt pins it; without it the validator uses json alone
    PARSERS = ["json"]
if jsonl.FAST_PATH:  # msgspec (requirements.txt): whole lines of a chunk checked the fast way, the rest as above
    PARSERS.append("fast")


@contextmanager
def parser(name):
    """Lines parsed by json alone, by orjson (then json), or the fast path first (msgspec, then orjson)."""
    loads = None if name == "json" else jsonl_lines.orjson.loads
    with mock.patch.object(jsonl_lines, "_fast_loads", loads), mock.patch.object(jsonl, "FAST_PATH", name == "fast"):
        yield


def incremental(data: bytes, cuts, *, endpoint, size):
    validator = JsonlValidator()
    start = 0
    for cut in sorted(cuts):
        validator.feed(data[start:cut])
        start = max(start, cut)
    validator.feed(data[start:])
    validator.finish()
    return validator.result(endpoint=endpoint, size=size)


def assert_same(data: bytes, *, cuts=(), endpoints=(None, CHAT, "/v1/embeddings")):
    for endpoint in endpoints:
        for size in (None, len(data)):
            want = reference_validate_jsonl(io.BytesIO(data), endpoint=endpoint, size=size)
            for name in PARSERS:
                with parser(name):
                    for chunking in (cuts, range(1, len(data)), ()):
                        got = incremental(data, chunking, endpoint=endpoint, size=size)
                        assert got == want, (name, endpoint, size, messages(got), messages(want))
                    assert validate_jsonl(io.BytesIO(data), endpoint=endpoint, size=size) == want


# Every file of the tests above that breaks a rule, with the limits those tests set.
INVALID_FILES = [
    ((line(url="/v1/unknown") + "\n").encode(), {}),
    ((line("a") + "\n\n" + line("b") + "\n").encode(), {}),
    (b"", {}),
    (b"\n\n\r\n", {}),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), {}),
    (jsonl.BOM + good_file(2), {}),
    (good_file(1) + line("r9").replace("r9", "r\xe99").encode("latin-1") + b"\n", {}),
    (good_file(1) + b"{not json\n", {}),
    *[(good_file(1) + v + b"\n", {}) for v in (b"[1, 2]", b'"text"', b"42", b"null", b"true")],
    ((json.dumps({k: v for k, v in json.loads(line()).items() if k != "custom_id"}) + "\n").encode(), {}),
    ((line(custom_id=7) + "\n").encode(), {}),
    ((line("a") + "\n" + line("b") + "\n" + line("a") + "\n").encode(), {}),
    ((line(method="GET") + "\n").encode(), {}),
    (good_file(1), {}),  # against the /v1/embeddings endpoint
    ((line("a") + "\n" + line("b", url="/v1/embeddings") + "\n").encode(), {}),
    ((json.dumps(json.loads(line()) | {"body": "hello"}) + "\n").encode(), {}),
    ((line("a") + "\n" + line("b", model="gpt-4.1") + "\n").encode(), {}),
    (good_file(8), {"MAX_REQUESTS": 5}),
    (good_file(5), {"MAX_BYTES": 100}),
    (b"{}" * 400 + b"\n" + (line("x", method="GET") + "\n").encode(), {"MAX_LINE_BYTES": 500}),
    (b"".join(b"[%d]\n" % i for i in range(50)), {}),
    # More edges: a long line at the end without newline, CR without LF, NaN and huge numbers (json takes
    # them, orjson does not), a lone surrogate, a BOM on a later line, deep nesting, an error on the first
    # url after 20 listed errors, and a url error that must be listed among other errors of its line.
    (good_file(1) + b"x" * 600, {"MAX_LINE_BYTES": 500}),
    (good_file(1) + b"x" * 500, {"MAX_LINE_BYTES": 500}),
    (good_file(1) + b"x" * 501, {"MAX_LINE_BYTES": 500}),
    (good_file(1) + b"x" * 501 + b"\n" + good_file(1), {"MAX_LINE_BYTES": 500}),
    (good_file(1) + b"x" * 500 + b"\n" + good_file(1), {"MAX_LINE_BYTES": 500}),
    (good_file(1) + b"x" * 499 + b"\r\n" + good_file(1), {"MAX_LINE_BYTES": 500}),
    (good_file(1) + b"x" * 500 + b"\r\n", {"MAX_LINE_BYTES": 500}),
    (good_file(2).replace(b"\n", b"\r") + b"\r", {}),
    ((line("a", body={"model": "m", "t": float("nan")}) + "\n").encode(), {}),
    ((line("a") [:-1] + ', "n": 1' + "0" * 30 + "}\n").encode(), {}),
    ((line("a", body={"model": "m"}) [:-2] + ', "s": "\\ud800"}}\n').encode(), {}),
    (good_file(1) + jsonl.BOM + (line("z") + "\n").encode(), {}),
    (good_file(1) + b"[" * 5000 + b"]" * 5000 + b"\n", {}),
    (b"".join(b"[%d]\n" % i for i in range(25)) + good_file(2), {}),
    (b"".join(b"[%d]\n" % i for i in range(5)) + (line(method="GET", url="/v1/x", custom_id=3) + "\n").encode(), {}),
]


@pytest.mark.parametrize("data, limits", INVALID_FILES, ids=[str(i) for i in range(len(INVALID_FILES))])
def test_the_incremental_validator_agrees_with_the_file_validator_on_every_bad_file(data, limits):
    with mock.patch.multiple(jsonl, **limits) if limits else contextmanager(lambda: (yield))():
        assert_same(data, cuts=[len(data) // 3, len(data) // 2])
        assert not reference_validate_jsonl(io.BytesIO(data), endpoint="/v1/embeddings").ok


FRAGMENTS = [
    line("a"), line("b"), line("a"), line("c", url="/v1/embeddings"), line("d", model="other"), line("e", method="GET"),
    line(custom_id=""), line(custom_id=None), "", "   ", "{not json", "[1]", "null", '"s"', "\ufeff{}",
    '{"custom_id": "n", "method": "POST", "url": "/v1/chat/completions", "body": {"x": NaN}}',
    '{"custom_id": "u", "method": "POST", "url": "/v1/unknown", "body": {}}', "x" * 70,
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    parts=st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=12), max_size=30),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    extra=st.binary(max_size=6),
    data=st.data(),
)
def test_the_incremental_validator_agrees_with_the_file_validator_on_any_file(parts, newline, extra, data):
    raw = newline.join(parts).encode("utf-8", "surrogatepass") + extra
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=6))
    limits = data.draw(st.fixed_dictionaries({}, optional={"MAX_LINE_BYTES": st.integers(1, 80),
                                                           "MAX_REQUESTS": st.integers(1, 5)}))
    with mock.patch.multiple(jsonl, **limits) if limits else contextmanager(lambda: (yield))():
        for endpoint in (None, CHAT):
            for size in (None, len(raw)):
                want = reference_validate_jsonl(io.BytesIO(raw), endpoint=endpoint, size=size)
                for name in PARSERS:
                    with parser(name):
                        got = incremental(raw, cuts, endpoint=endpoint, size=size)
                    assert got == want, (name, endpoint, size, messages(got), messages(want))


def test_a_line_error_reads_after_the_pages_line_label_and_as_a_whole_sentence():
    result = check(good_file(1) + b"{not json\n")
    error = result.errors[0]
    assert error.message.startswith("is not valid JSON") and "Line" not in error.message
    assert error.text.startswith("Line 2 is not valid JSON")
    assert check(b"").errors[0].text == check(b"").errors[0].message  # whole-file errors have no label


# ---------------------------------------------------------------------------
# The fast path (JsonlValidator._lines with msgspec): a line it accepts is one the exact path accepts, and
# any other line is left to the exact path, so the outcome is the same line for line. Each case puts one
# line among valid requests, in the middle of a chunk, with chunk boundaries inside lines.
# ---------------------------------------------------------------------------

def requests_file(n: int, *, newline="\n", start=0) -> list[str]:
    return [line(f"id-{i}") for i in range(start, start + n)]


def with_line(odd: str | bytes, *, at=30, n=60, newline="\n") -> bytes:
    lines = [text.encode() for text in requests_file(n)]
    lines.insert(at, odd.encode("utf-8", "surrogatepass") if isinstance(odd, str) else odd)
    return newline.encode().join(lines) + newline.encode()


def nested(depth: int) -> str:
    return line("deep")[:-2] + ', "x": ' + "[" * depth + "]" * depth + "}}"


ODD_LINES = {
    "valid": line("extra-valid"),
    "duplicate id": line("id-3"),
    "duplicate long id": line("L" * 100),  # see below: the long id is also in the file's first lines
    "long id": line("M" * 65),
    "empty id": line(""),
    "id not a string": line(7),
    "no id": json.dumps({k: v for k, v in json.loads(line()).items() if k != "custom_id"}),
    "method": line("m1", method="GET"),
    "method not a string": line("m2", method=None),
    "other url": line("u1", url="/v1/embeddings"),
    "empty url": line("u2", url=""),
    "other model": line("o1", model="gpt-4.1"),
    "model not a string": line("o2", model=5),
    "model null": json.dumps(json.loads(line("o3")) | {"body": {"model": None}}),
    "no model": json.dumps(json.loads(line("o4")) | {"body": {"messages": []}}),
    "body not an object": json.dumps(json.loads(line("b1")) | {"body": [1]}),
    "extra top-level key": json.dumps(json.loads(line("k1")) | {"note": "x"}),
    "repeated key": line("r1")[:-1] + ', "custom_id": "r2"}',
    "repeated key, second invalid": line("r3")[:-1] + ', "custom_id": 5}',
    "not json": "{oops",
    "two values": line("t1") + " " + line("t2"),
    "array": "[1, 2]",
    "blank": "",
    "spaces": "   ",
    "nan": line("n1", body={"model": "gpt-4o-mini", "t": float("nan")}),
    "overflowing float": line("f1")[:-2] + ', "t": 1e400}}',
    "big integer": line("i1")[:-2] + ', "t": ' + "9" * 400 + "}}",
    "lone surrogate": line("s1")[:-2] + ', "t": "\\ud800"}}',
    "surrogate pair": line("s2")[:-2] + ', "t": "\\ud83d\\ude00"}}',
    "control character": line("c1")[:-2] + ', "t": "a\tb"}}',
    "non-ascii": line("é1", body={"model": "gpt-4o-mini", "t": "déjà vu ✓"}),
    "nested 9": nested(9),
    "nested 30": nested(30),
    "nested 5000": nested(5000),
    "bom": "\ufeff" + line("bom1"),
    # The chat fast path's typed fields: anything else in body, or a value of another type, is read by the
    # general fast path or the exact one.
    "chat with parts": line("p1", body={"model": "gpt-4o-mini", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "u"}}]}]}),
    "chat with other fields": line("p2", body={"model": "gpt-4o-mini", "messages": [], "tools": [{"a": [1]}]}),
    "chat with a message field": line("p3", body={"model": "gpt-4o-mini", "messages": [{"role": "user", "x": 1}]}),
    "max_tokens not an integer": line("p4", body={"model": "gpt-4o-mini", "messages": [], "max_tokens": "many"}),
    "temperature overflowing": line("p5")[:-2] + ', "temperature": 1e999}}',
    "chat model null": line("p6", body={"model": None, "messages": []}),
    "chat model a list": line("p7", body={"model": ["gpt-4o-mini"], "messages": []}),
    "chat deep part": line("p8", body={"model": "gpt-4o-mini", "messages": [
        {"role": "user", "content": [{"a": [[[[[[1]]]]]]}]}]}),
}


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("case", list(ODD_LINES))
def test_the_fast_path_leaves_every_other_line_to_the_exact_path(case, newline):
    data = with_line(ODD_LINES[case], newline=newline)
    if case == "duplicate long id":
        data = (line("L" * 100) + newline).encode() + data
    assert_same(data, cuts=[len(data) // 3, len(data) // 3 + 7, 2 * len(data) // 3], endpoints=(None, CHAT))


@pytest.mark.parametrize("bad", [b'"\xff\xfe"', b'"\xed\xa0\x80"', b'"\xc0\x80"'])
@pytest.mark.parametrize("where", ["body", "top", "message"])
def test_invalid_utf8_inside_a_request_is_reported_by_the_fast_path_as_before(bad, where):
    if where == "body":
        odd = line("x1").encode()[:-2] + b', "t": ' + bad + b"}}"
    elif where == "top":  # under a key the fast path does not know: it is not skipped unread
        odd = line("x1").encode()[:-1] + b', "note": ' + bad + b"}"
    else:  # the same in a chat message
        odd = line("x1", body={"model": "gpt-4o-mini", "messages": [{"role": "user", "x": 0}]}).encode().replace(b"0", bad)
    data = with_line(odd)
    assert_same(data, cuts=[100, len(data) // 2])
    assert [e.line for e in check(data).errors] == [31]
    assert "not valid UTF-8" in check(data).errors[0].message


def test_a_number_longer_than_python_reads_is_reported_not_a_crash():
    data = with_line(line("n")[:-2] + ', "t": ' + "9" * 5000 + "}}")
    assert_same(data, cuts=[len(data) // 2])
    assert messages(check(data)) == "31: has a number too long to read (more than 4,300 digits)."


def test_a_line_nested_deeper_than_json_reads_is_still_refused():
    data = with_line(nested(5000))
    assert_same(data, cuts=[len(data) // 2])
    assert messages(check(data)) == "31: is nested too deeply to read."


def test_the_fast_path_checks_most_lines_and_the_exact_path_the_rest(monkeypatch):
    """The first request (it sets the url and model), the lines that cross a chunk boundary and the lines
    of a chunk with an odd line take the exact path; every other line is checked the fast way."""
    data = with_line(line("id-3"), at=200, n=400)
    exact = []
    real = jsonl.JsonlValidator._line
    monkeypatch.setattr(jsonl.JsonlValidator, "_line", lambda self, raw: exact.append(raw) or real(self, raw))
    chunk = 4096
    result = incremental(data, range(chunk, len(data), chunk), endpoint=CHAT, size=len(data))
    assert messages(result) == "201: repeats custom_id “id-3” (first used on line 4); each custom_id must be unique."
    assert result.requests == 401
    per_chunk = chunk // len(line("id-100")) + 1
    assert len(exact) <= 1 + len(data) // chunk + 1 + per_chunk + 2
    assert len(exact) < 401 // 4


@pytest.mark.parametrize("blanks", [1, 2])
def test_blank_lines_at_the_end_of_a_chunk_are_reported_when_the_next_chunk_has_a_request(blanks):
    head = "".join(text + "\n" for text in requests_file(100)) + "\n" * blanks  # past the 8 KB sniffed first
    data = (head + "".join(text + "\n" for text in requests_file(20, start=100))).encode()
    result = incremental(data, [len(head)], endpoint=CHAT, size=len(data))
    assert [e.line for e in result.errors] == list(range(101, 101 + blanks))
    assert_same(data, cuts=[len(head)], endpoints=(CHAT,))


def test_duplicate_custom_ids_are_found_across_chunks_by_the_fast_path():
    first = "".join(text + "\n" for text in requests_file(300))
    again = "".join(text + "\n" for text in requests_file(5, start=150))
    data = (first + again).encode()
    result = incremental(data, range(4096, len(data), 4096), endpoint=CHAT, size=len(data))
    assert [e.line for e in result.errors] == [301, 302, 303, 304, 305]
    assert_same(data, cuts=[len(data) // 2])


def test_the_fast_path_counts_a_file_in_crlf_as_the_exact_path_does():
    data = with_line(line("crlf"), newline="\r\n", n=200)
    for size in (None, len(data)):
        with parser("fast"):
            fast = incremental(data, [len(data) // 2], endpoint=None, size=size)
        with parser("orjson"):
            exact = incremental(data, [len(data) // 2], endpoint=None, size=size)
        assert fast == exact and fast.ok and fast.size == exact.size


@pytest.mark.parametrize("limits", [{"MAX_REQUESTS": 45}, {"MAX_REQUESTS": 60}, {"MAX_LINE_BYTES": 150}])
def test_the_fast_path_keeps_the_request_and_line_limits(limits):
    data = with_line(line("long", body={"model": "gpt-4o-mini", "t": "x" * 120}))
    with mock.patch.multiple(jsonl, **limits):
        assert_same(data, cuts=[len(data) // 2], endpoints=(CHAT,))
        assert not check(data).ok


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    odd=st.lists(st.sampled_from(sorted(ODD_LINES)) | st.text(max_size=20), max_size=6),
    positions=st.lists(st.integers(0, 40), max_size=6),
    newline=st.sampled_from(["\n", "\r\n"]),
    data=st.data(),
)
def test_the_fast_path_agrees_with_the_reference_on_files_of_mostly_valid_requests(odd, positions, newline, data):
    lines = requests_file(40)
    for text, at in zip(odd, positions):
        lines.insert(at, ODD_LINES.get(text, text))
    raw = (newline.join(lines) + newline).encode("utf-8", "surrogatepass")
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=5))
    for endpoint in (None, CHAT):
        want = reference_validate_jsonl(io.BytesIO(raw), endpoint=endpoint, size=len(raw))
        with parser("fast"):
            got = incremental(raw, cuts, endpoint=endpoint, size=len(raw))
        assert got == want, (endpoint, messages(got), messages(want))
