"""Property-based tests (hypothesis) over the parsers that meet untrusted input: the JSONL validator,
the list's query parameters, id validation, and the client's reading of upstream answers."""

from __future__ import annotations

import io
import json
import string

import httpx
import pytest
from django.test import RequestFactory
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from batches import jsonl
from batches.upstream import (
    ENDPOINTS,
    ID_PATTERN,
    Batch,
    InvalidId,
    UpstreamBadResponse,
    error_from_response,
    validate_id,
)
from batches.upstream.errors import parse_retry_after as _parse_retry_after
from batches.live_list import MAX_TRAIL, parse_list_params
from batches.vocabulary import DEFAULT_LIMIT, MAX_LIMIT

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ID_CHARS = string.ascii_letters + string.digits + "_.:-"

valid_ids = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(string.ascii_letters + string.digits),
    st.text(alphabet=ID_CHARS, max_size=60),
)
anything = st.text(max_size=300)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


# -- ids ----------------------------------------------------------------------------------------------


@FAST
@given(value=anything)
@example("../files")
@example("batch_1/cancel")
@example("batch_1%2Fcancel")
@example("batch_1\x00")
@example("b" * 201)
@example("0=")  # "=", "+", "@", ":" and "~" are legal in a path segment as they are
@example("batch_a:b@c+d~e")
def test_an_accepted_id_is_one_safe_path_segment_and_anything_else_is_refused(value):
    try:
        encoded = validate_id(value)
    except InvalidId as err:
        assert "is not a valid batch id" in str(err)
        return
    assert encoded == value  # nothing in the safe alphabet needs encoding
    assert ID_PATTERN.fullmatch(value) and value not in (".", "..")
    url = httpx.URL(f"http://upstream.test/v1/batches/{encoded}")
    assert url.path == f"/v1/batches/{value}"
    assert url.path.count("/") == 3  # exactly the batch endpoint, never another one


# -- list parameters ----------------------------------------------------------------------------------


def _params(**values):
    return RequestFactory().get("/projects/default/batches/", {k: v for k, v in values.items() if v is not None})


def _as_int(text: str) -> int:
    """What int() makes of it, or 0 when it is not a whole number (str.isdigit() also accepts "²")."""
    try:
        return int(text)
    except ValueError:
        return 0


@FAST
@given(
    after=st.none() | anything | valid_ids,
    limit=st.none() | anything | st.integers(-10**30, 10**30).map(str),
    prev=st.none() | anything | st.lists(valid_ids | anything, max_size=70).map(",".join),
)
@example(after=None, limit="²", prev=None)  # a "digit" that int() refuses: found by hypothesis in CI
def test_list_parameters_always_parse_to_a_safe_position(after, limit, prev):
    # The HTTP layer never delivers NUL or surrogates in a query; RequestFactory would refuse to encode them.
    position, problems = parse_list_params(_params(after=after, limit=limit, prev=prev).GET)
    assert 1 <= position.limit <= MAX_LIMIT
    if position.after is not None:
        validate_id(position.after)
    for cursor in position.trail:
        validate_id(cursor)
    assert len(position.trail) <= MAX_TRAIL
    limit_ok = limit is None or limit.strip() == "" or 1 <= _as_int(limit) <= MAX_LIMIT
    if not limit_ok:
        assert position.limit == DEFAULT_LIMIT and problems
    assert all(isinstance(problem, str) and problem for problem in problems)


@FAST
@given(after=st.none() | valid_ids, limit=st.integers(1, MAX_LIMIT), trail=st.lists(valid_ids, max_size=MAX_TRAIL))
def test_every_list_address_the_dashboard_builds_reads_back_as_the_same_page(after, limit, trail):
    position, problems = parse_list_params(_params(after=after, limit=str(limit), prev=",".join(trail) or None).GET)
    assert not problems
    url = position.self_url
    path, _, query = url.partition("?")
    again, problems = parse_list_params(RequestFactory().get(url).GET)
    assert not problems
    assert again == position


# -- the JSONL validator ------------------------------------------------------------------------------


@FAST
@given(data=st.binary(max_size=2000))
@example(b"\xef\xbb\xbf{}")
@example(b"\x00\x01")
@example(b"\n\n\n")
@example(b'{"custom_id": "a"}\r\n\r\n{"custom_id": "a"}')
def test_the_jsonl_validator_never_crashes_and_its_error_lines_exist(data):
    result = jsonl.validate_jsonl(io.BytesIO(data))
    lines = data.count(b"\n") + 1
    assert result.error_count >= len(result.errors)
    assert len(result.errors) <= jsonl.MAX_LISTED_ERRORS
    assert result.ok == (result.error_count == 0)
    for error in result.errors:
        assert error.line is None or 1 <= error.line <= lines
        assert error.message


@st.composite
def valid_files(draw):
    url = draw(st.sampled_from(ENDPOINTS))
    model = draw(st.text(alphabet=string.ascii_lowercase + string.digits + "-.", min_size=1, max_size=20))
    ids = draw(st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=30, unique=True))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    trailing = draw(st.integers(0, 3))
    lines = [
        json.dumps({"custom_id": cid, "method": "POST", "url": url, "body": {"model": model, "input": draw(json_values)}})
        for cid in ids
    ]
    text = newline.join(lines) + newline * trailing
    return text.encode("utf-8"), url, model, len(ids)


@FAST
@given(file=valid_files())
def test_a_well_formed_batch_file_is_accepted_with_its_count_url_and_model(file):
    data, url, model, count = file
    result = jsonl.validate_jsonl(io.BytesIO(data))
    assert result.ok, result.errors
    assert (result.requests, result.url, result.model) == (count, url, model)


@FAST
@given(file=valid_files(), position=st.integers(0, 10**6), junk=st.text(min_size=1, max_size=50))
def test_a_broken_line_is_reported_with_its_line_number(file, position, junk):
    data, url, model, count = file
    lines = data.decode("utf-8").splitlines()
    line = position % count
    try:
        parsed = json.loads(junk)
    except ValueError:
        parsed = None
    # Not a broken line but several, a blank one, a valid object, or a binary file (a whole-file error).
    assume(not isinstance(parsed, dict) and junk.strip() and len(junk.splitlines()) == 1 and "\x00" not in junk)
    lines[line] = junk
    result = jsonl.validate_jsonl(io.BytesIO("\n".join(lines).encode("utf-8")))
    assert not result.ok
    assert any(error.line == line + 1 for error in result.errors)


@FAST
@given(file=valid_files(), which=st.integers(0, 10**6))
def test_a_repeated_custom_id_is_reported_on_the_repeating_line(file, which):
    data, url, model, count = file
    lines = data.decode("utf-8").splitlines()
    lines = [line for line in lines if line]
    repeated = lines[which % count]
    lines.append(repeated)
    result = jsonl.validate_jsonl(io.BytesIO("\n".join(lines).encode("utf-8")))
    assert not result.ok
    assert any(error.line == len(lines) and "repeats custom_id" in error.message for error in result.errors)


# -- reading upstream answers -------------------------------------------------------------------------


@FAST
@given(data=json_values)
@example({"id": "batch_1", "status": None, "request_counts": {"total": "x"}, "errors": {"data": [1, None]}})
@example({"id": "batch_1", "metadata": {"k": {"nested": [1]}}, "usage": {"input_tokens": True}})
def test_any_json_an_upstream_sends_becomes_a_batch_or_a_bad_response_error(data):
    try:
        batch = Batch.from_api(data)
    except UpstreamBadResponse:
        return
    assert isinstance(batch.status, str) and batch.status
    assert batch.timeline == sorted(batch.timeline, key=lambda item: item[1])


@FAST
@given(
    status=st.integers(400, 599),
    body=st.binary(max_size=300) | json_values.map(lambda v: json.dumps({"error": v}).encode()),
    retry_after=st.none() | st.text(alphabet=string.printable, max_size=40),
    retry_after_ms=st.none() | st.text(alphabet=string.printable, max_size=20),
)
def test_any_error_answer_becomes_an_error_the_dashboard_can_show_without_a_500(status, body, retry_after, retry_after_ms):
    headers = {"x-request-id": "req_1"}
    if retry_after is not None:
        headers["retry-after"] = retry_after.replace("\n", " ").replace("\r", " ")
    if retry_after_ms is not None:
        headers["retry-after-ms"] = retry_after_ms.replace("\n", " ").replace("\r", " ")
    try:
        response = httpx.Response(status, content=body, headers=headers)
    except (httpx.InvalidURL, ValueError):  # pragma: no cover - headers httpx itself refuses
        return
    err = error_from_response(response, "batch lookup")
    assert err.http_status != 500 and 400 <= err.http_status < 600
    assert str(err) and err.request_id == "req_1"
    assert err.retry_after is None or err.retry_after >= 0
    parsed = _parse_retry_after(response.headers)
    assert parsed is None or parsed >= 0


@pytest.mark.parametrize(
    "headers,expected",
    [({"retry-after-ms": "1500"}, 1.5), ({"retry-after": "7"}, 7.0), ({"retry-after": "soon"}, None), ({}, None)],
)
def test_retry_after_headers_are_read_as_the_sdk_does(headers, expected):
    assert _parse_retry_after(httpx.Headers(headers)) == expected
