"""Hostile and bad input: ids and parameters never reach the upstream unvalidated, and upstream data
carrying HTML or script is rendered escaped everywhere.

Ids in the address either do not match a route, or are refused by ``validate_id`` before any request;
the emulator's counters prove that nothing was sent (or that only the intended endpoint was).
"""

from __future__ import annotations

import pytest
from django.test import Client
from tests.helpers import HTMX

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
IMG = '<img src=x onerror="alert(2)">'
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"

# Path segments as they appear in the raw address (the test client sends them percent-encoded as is).
HOSTILE_IDS = [
    "..",
    "%2E%2E",
    "..%2F..%2Fv1%2Ffiles",
    "batch_1%252Fcancel",
    "%2Fv1%2Ffiles",
    "..%5C..%5Cwindows",
    "batch_1%00",
    "batch_1%0D%0AX-Injected:%201",
    "batch_1%09tab",
    "batch_1%20space",
    "batch_1%3Fafter%3Dx",
    "batch_1%23frag",
    "batch_%C3%A9",
    "batch_%F0%9F%92%A5",
    "-leading-dash",
    "_leading_underscore",
    ".hidden",
    "b" * 201,
    "batch_" + "9" * 5000,
    "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
]


def _upstream_untouched(emulator) -> None:
    assert emulator.state.total_requests() == 0, dict(emulator.state.counts)


@pytest.fixture
def quiet(upstream):
    upstream.state.reset_counts()
    return upstream


@pytest.mark.parametrize("bad_id", HOSTILE_IDS)
@pytest.mark.parametrize("hx", [{}, HTMX], ids=["full page", "htmx"])
def test_a_hostile_batch_id_in_the_address_is_a_404_without_any_upstream_call(client, quiet, bad_id, hx):
    response = client.get(f"/projects/default/batches/{bad_id}/", headers=hx)
    assert response.status_code == 404
    assert "Traceback" not in response.content.decode()
    _upstream_untouched(quiet)


@pytest.mark.parametrize("bad_id", HOSTILE_IDS)
def test_a_hostile_batch_id_cannot_be_cancelled_and_nothing_is_sent(client, quiet, bad_id):
    response = client.post(f"/projects/default/batches/{bad_id}/cancel/")
    assert response.status_code == 404
    _upstream_untouched(quiet)


def test_a_dot_dot_path_is_not_resolved_against_the_upstream(client, quiet):
    for path in ("/projects/default/batches/../v1/files/", "/projects/default/batches/x/../../files/", "/projects/default/batches/%2E%2E/cancel/x/"):
        assert client.get(path).status_code == 404
    assert client.post("/projects/default/batches/%2E%2E/cancel/").status_code == 404
    _upstream_untouched(quiet)


def test_an_encoded_slash_that_spells_another_dashboard_address_reaches_only_that_address(client, quiet):
    # WSGI decodes %2F before routing, so this is the cancel address, which refuses a GET; nothing is sent.
    assert client.get("/projects/default/batches/batch_1%2Fcancel/").status_code == 405
    _upstream_untouched(quiet)


@pytest.mark.parametrize("odd_id", ["batch_1.cancel", "a..b", "batch:1", "A-b_c.d:e", "x" * 200])
def test_an_unusual_but_valid_id_reaches_only_the_batch_endpoint(client, quiet, odd_id):
    response = client.get(f"/projects/default/batches/{odd_id}/")
    assert response.status_code == 404  # the emulator does not know it
    assert dict(quiet.state.counts) == {"GET /v1/batches/{id}": 1}


# -- query parameters ---------------------------------------------------------------------------------

BAD_LIST_QUERIES = [
    ("limit=abc", "whole number"),
    ("limit=-1", "from 1 to 100"),
    ("limit=0", "from 1 to 100"),
    ("limit=101", "from 1 to 100"),
    ("limit=1e3", "whole number"),
    ("limit=99999999999999999999999999999999", "from 1 to 100"),
    ("limit=%00", "whole number"),
    ("limit=" + "9" * 5000, "whole number"),  # int() refuses over 4300 digits
    ("after=..%2F..%2Ffiles", "not a valid batch id"),
    ("after=%3Cscript%3E", "not a valid batch id"),
    ("after=" + "a" * 300, "not a valid batch id"),
]


@pytest.mark.parametrize("query,says", BAD_LIST_QUERIES)
def test_a_bad_list_parameter_gets_a_clear_message_and_the_first_page(client, quiet, query, says):
    response = client.get(f"/projects/default/batches/?{query}")
    body = response.content.decode()
    assert response.status_code == 400
    assert says in body
    assert "<script>" not in body
    # One read of a safe page (the bad value itself was not sent: the emulator would refuse it with a 400
    # that the page would show instead of the list).
    assert dict(quiet.state.counts) == {"GET /v1/batches": 1}


@pytest.mark.parametrize("query,says", BAD_LIST_QUERIES[:3])
def test_a_bad_list_parameter_in_an_htmx_refresh_is_explained_inside_the_partial(client, quiet, query, says):
    response = client.get(f"/projects/default/batches/?{query}", headers=HTMX)
    body = response.content.decode()
    assert response.status_code == 200  # htmx swaps only 2xx answers: the corrected page carries the warning
    assert says in body and "<html" not in body


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("foo=bar", 200),
        ("limit=10&limit=abc", 400),  # the last value counts, and "abc" is no page size
        ("after=&limit=", 302),  # a submitted form's empty fields: redirected to the short URL
        ("prev=%3Cscript%3E,..,x", 200),  # a trail without a cursor is ignored
        ("x=" + "y" * 5000, 200),
    ],
)
def test_unknown_empty_or_repeated_list_parameters_never_cause_a_server_error(client, quiet, query, status):
    response = client.get(f"/projects/default/batches/?{query}")
    assert response.status_code == status
    assert "<script>" not in response.content.decode()


def test_a_request_with_too_many_parameters_is_refused_without_a_server_error(client, quiet):
    query = "&".join(f"p{i}=1" for i in range(1200))  # above DATA_UPLOAD_MAX_NUMBER_FIELDS (1000)
    response = client.get(f"/projects/default/batches/?{query}")
    assert response.status_code == 400
    _upstream_untouched(quiet)


def test_an_oversized_cancel_body_is_refused_without_a_server_error(quiet):
    target = quiet.state.add_batch(status="in_progress")
    client = Client(enforce_csrf_checks=True)
    body = "x=" + "y" * (3 * 1024 * 1024)  # above DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB)
    response = client.post(f"/projects/default/batches/{target['id']}/cancel/", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 403  # the CSRF check refuses it (no cookie) before the body is read
    assert quiet.state.counts["POST /v1/batches/{id}/cancel"] == 0


def test_a_detail_page_ignores_unknown_parameters(client, quiet):
    target = quiet.state.add_batch(status="in_progress")
    assert client.get(f"/projects/default/batches/{target['id']}/?after=..&limit=abc&x={'y' * 3000}").status_code == 200


# -- hostile data from the upstream -------------------------------------------------------------------


@pytest.fixture
def hostile_batch(upstream):
    return upstream.state.add_batch(
        status="failed",
        model=SCRIPT,
        endpoint=f"/v1/{IMG}",
        metadata={"description": SCRIPT, IMG: f"value {SCRIPT}", "owner": '"><svg onload=alert(3)>'},
        errors={
            "object": "list",
            "data": [
                {"code": IMG, "message": f"line broke {SCRIPT}", "param": SCRIPT, "line": 1},
            ],
        },
        request_counts={"total": 1, "completed": 0, "failed": 1},
    )


def _assert_escaped(body: str) -> None:
    for raw in (SCRIPT, IMG, "<svg onload", "onerror=\"alert", "<img"):
        assert raw not in body, f"unescaped {raw!r} in page"


def _assert_shown_escaped(response, status: int = 200) -> None:
    """The page answered ``status`` and shows the hostile text, as text."""
    body = response.content.decode()
    assert response.status_code == status
    _assert_escaped(body)
    assert ESCAPED_SCRIPT in body


def _hostile_error(upstream, route: str, status: int) -> str:
    """A running batch for which ``route`` answers ``status`` with markup in the error's message and code."""
    target = upstream.state.add_batch(status="in_progress")
    error = {"message": f"bad {SCRIPT} {IMG}", "type": "invalid_request_error", "code": SCRIPT}
    upstream.state.inject_fault(route=route, status=status, body={"error": error})
    return target["id"]


@pytest.mark.parametrize("hx", [{}, HTMX], ids=["full page", "htmx"])
def test_html_in_upstream_batch_fields_is_escaped_on_the_detail_page_and_its_raw_json(client, hostile_batch, hx):
    response = client.get(f"/projects/default/batches/{hostile_batch['id']}/", headers=hx)
    body = response.content.decode()
    assert response.status_code == 200
    _assert_escaped(body)
    if not hx:
        assert ESCAPED_SCRIPT in body  # shown, as text


@pytest.mark.parametrize("hx", [{}, HTMX], ids=["full page", "htmx"])
def test_html_in_upstream_batch_fields_is_escaped_on_the_list(client, hostile_batch, hx):
    _assert_shown_escaped(client.get("/projects/default/batches/", headers=hx))


def test_html_in_an_upstream_error_message_is_escaped_on_the_error_page(client, upstream):
    batch_id = _hostile_error(upstream, "GET /v1/batches/{id}", 400)
    _assert_shown_escaped(client.get(f"/projects/default/batches/{batch_id}/"), 400)


def test_html_in_an_upstream_conflict_message_is_escaped_after_a_cancel(client, upstream):
    batch_id = _hostile_error(upstream, "POST /v1/batches/{id}/cancel", 409)
    _assert_shown_escaped(client.post(f"/projects/default/batches/{batch_id}/cancel/", follow=True))


@pytest.mark.parametrize("hostile_id", [f"batch_{SCRIPT}", "batch_a/../../files", "batch_1\r\nSet-Cookie: x=1"])
def test_a_hostile_id_sent_by_the_upstream_is_shown_escaped_but_never_linked(client, upstream, hostile_id):
    upstream.state.add_batch(id=hostile_id, status="in_progress")
    response = client.get("/projects/default/batches/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "unusual id" in body  # the row is there: nothing silently dropped
    assert "/projects/default/batches/batch_a/" not in body  # never turned into a link or a cancel form
    from django.utils.html import escape

    assert f"<code>{escape(hostile_id)}</code> <span class=\"flag flag-warn\"" in body
    _assert_escaped(body)
