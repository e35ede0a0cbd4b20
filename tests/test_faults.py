"""Upstream faults on every page and action, over real loopback HTTP against the emulator.

For each fault the dashboard must answer with a sentence saying what failed and what to do, an honest
status code (never 500), no traceback, a log line carrying the upstream request id (when the upstream
sent one), and within a bounded time; retries follow the policy written in batches/upstream/client.py and are
counted by the emulator.
"""

from __future__ import annotations

import html
import logging
import re
import socket
import time
import uuid
from dataclasses import dataclass, field

import pytest

from batches.upstream import RETRY_BUDGET_SECONDS
from batches.models import AuditEntry
from tests.helpers import HTMX

pytestmark = pytest.mark.django_db

LIST_ROUTE = "GET /v1/batches"
BATCH_ROUTE = "GET /v1/batches/{id}"
CANCEL_ROUTE = "POST /v1/batches/{id}/cancel"
GATEWAY_HTML = "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
# Connect timeout for the tests that need one; the page's bound is the retry budget plus a few timeouts.
CONNECT_TIMEOUT = 0.25
READ_TIMEOUT = 0.5
TIME_BOUND = RETRY_BUDGET_SECONDS + 3 * CONNECT_TIMEOUT + READ_TIMEOUT


@dataclass(frozen=True)
class Fault:
    """One way the upstream can fail, and what the dashboard must make of it on a read."""

    name: str
    inject: dict = field(default_factory=dict)  # emulator.state.inject_fault(...) arguments
    network: str = ""  # "refused" or "connect-timeout": the upstream address itself misbehaves
    status: int = 502  # the dashboard's answer to a page view
    says: str = ""  # a fragment of the sentence the operator reads
    read_attempts: int = 1  # upstream requests one page view makes (GET retry policy)
    reaches_upstream: bool = True  # False when no request can reach the emulator
    request_id: bool = True  # whether the upstream sent an x-request-id to log
    retry_after: str | None = None  # the Retry-After header the dashboard passes on


FAULTS = [
    Fault("400", {"status": 400}, status=400, says="rejected the"),
    Fault("401 key rejected", {"status": 401}, status=502, says="rejected the dashboard's API key"),
    Fault("403", {"status": 403}, status=403, says="lacks permission"),
    Fault("409", {"status": 409}, status=409, says="refused"),
    Fault("429 without retry-after", {"status": 429}, status=429, says="rate limiting", read_attempts=3),
    Fault(
        "429 with retry-after-ms",
        {"status": 429, "headers": {"retry-after-ms": "40"}},
        status=429, says="Try again in a second", read_attempts=3, retry_after="1",
    ),
    Fault(
        "429 with retry-after beyond the retry budget",
        {"status": 429, "headers": {"retry-after": "30"}},
        status=429, says="Try again in 30 seconds", read_attempts=1, retry_after="30",
    ),
    Fault(
        "429 with x-should-retry false",
        {"status": 429, "headers": {"x-should-retry": "false"}},
        status=429, says="rate limiting", read_attempts=1,
    ),
    Fault("500", {"status": 500}, status=503, says="failed with an error (500)", read_attempts=3),
    Fault(
        "502 with a gateway's HTML body",
        {"status": 502, "body": GATEWAY_HTML, "content_type": "text/html"},
        status=503, says="failed with an error (502)", read_attempts=3,
    ),
    Fault("503", {"status": 503}, status=503, says="failed with an error (503)", read_attempts=3),
    Fault("504", {"status": 504, "body": ""}, status=503, says="failed with an error (504)", read_attempts=3),
    Fault(
        "read timeout",
        {"delay": READ_TIMEOUT + 0.5},
        status=504, says="did not answer", read_attempts=1, request_id=False,
    ),
    Fault(
        "connection reset mid-body",
        {"status": 200, "truncate": True},
        status=503, says="connection to the Batch API broke", read_attempts=3, request_id=False,
    ),
    Fault(
        "connection dropped before any answer",
        {"drop": True},
        status=503, says="connection to the Batch API broke", read_attempts=3, request_id=False,
    ),
    Fault(
        "malformed JSON",
        {"status": 200, "body": "{'object': 'list', data: [}"},
        status=502, says="could not read",
    ),
    Fault(
        "truncated JSON with a matching length",
        {"status": 200, "body": '{"object": "list", "data": [{"id": "batch_1", "status": "compl'},
        status=502, says="could not read",
    ),
    Fault(
        "valid JSON of the wrong shape",
        {"status": 200, "body": {"object": "list", "data": "nope", "id": 7}},
        status=502, says="API sent a",
    ),
    Fault("undocumented status 418", {"status": 418}, status=400, says="unexpected status 418"),
    Fault(
        "connection refused",
        network="refused",
        status=503, says="could not be reached", read_attempts=3, reaches_upstream=False, request_id=False,
    ),
    Fault(
        "connect timeout",
        network="connect-timeout",
        status=504, says="could not be reached in time", read_attempts=3, reaches_upstream=False, request_id=False,
    ),
]
FAULT_IDS = [f.name for f in FAULTS]


@pytest.fixture
def refused_url():
    """A loopback address where nothing listens."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def blackhole_url():
    """A loopback port whose accept queue is full, so new connections hang in SYN (a connect timeout)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(8):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.05)
    probe = socket.socket()
    probe.settimeout(0.2)
    try:
        probe.connect(("127.0.0.1", port))
    except TimeoutError:
        pass
    else:  # pragma: no cover - the kernel accepted anyway; the test would not test a timeout
        pytest.fail("could not make a loopback port that times out on connect")
    finally:
        probe.close()
    yield f"http://127.0.0.1:{port}/v1"
    for filler in fillers:
        filler.close()
    listener.close()


@pytest.fixture
def faulty(upstream, settings, refused_url, request, caplog):
    """Apply one Fault to one upstream route; returns a function doing so. The log is kept from INFO up,
    for the checks of what was logged."""
    caplog.set_level(logging.INFO)
    settings.OPENAI_TIMEOUT = READ_TIMEOUT
    settings.OPENAI_CONNECT_TIMEOUT = CONNECT_TIMEOUT

    def apply(fault: Fault, route: str) -> None:
        if fault.network == "refused":
            settings.OPENAI_BASE_URL = refused_url
        elif fault.network == "connect-timeout":
            settings.OPENAI_BASE_URL = request.getfixturevalue("blackhole_url")
        else:
            upstream.state.inject_fault(route=route, times=None, **fault.inject)
        upstream.state.reset_counts()

    return apply


def _assert_honest(response, fault: Fault, caplog, elapsed: float, *, status: int | None = None) -> str:
    body = response.content.decode()
    assert response.status_code == (fault.status if status is None else status)
    assert response.status_code != 500
    assert "Traceback" not in body and "httpx" not in body
    assert fault.says in html.unescape(body)
    assert elapsed < TIME_BOUND
    assert all(record.exc_info is None for record in caplog.records)
    if fault.request_id:
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert any(re.search(r"request_id=req_[0-9a-f]{32}", line) for line in warnings), warnings
        shown = re.search(r"Request id <code>(req_[0-9a-f]+)</code>", body)
        if shown:
            assert shown.group(1) in caplog.text
    else:
        assert any("request_id=None" in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    if fault.retry_after is not None:
        assert response["Retry-After"] == fault.retry_after
    if fault.name.startswith("502"):
        assert "nginx" not in body  # the gateway's page is not echoed into ours
    return body


def _expected_reads(fault: Fault, emulator, route: str) -> None:
    assert emulator.state.counts[route] == (fault.read_attempts if fault.reaches_upstream else 0)


def _get_honestly(client, url: str, fault: Fault, caplog, **extra) -> str:
    """GET ``url`` (timed) and check that the answer to ``fault`` is honest; the page's body."""
    started = time.monotonic()
    response = client.get(url, **extra)
    return _assert_honest(response, fault, caplog, time.monotonic() - started)


# -- list ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", FAULTS, ids=FAULT_IDS)
def test_the_batch_list_explains_each_upstream_fault_honestly(client, upstream, faulty, caplog, fault):
    faulty(fault, LIST_ROUTE)
    body = _get_honestly(client, "/projects/default/batches/", fault, caplog)
    assert "<html" in body
    _expected_reads(fault, upstream, LIST_ROUTE)


@pytest.mark.parametrize("fault", FAULTS, ids=FAULT_IDS)
def test_the_batch_list_htmx_refresh_explains_each_upstream_fault_as_a_partial(client, upstream, faulty, caplog, fault):
    faulty(fault, LIST_ROUTE)
    body = _get_honestly(client, "/projects/default/batches/", fault, caplog, headers=HTMX)
    assert "<html" not in body
    _expected_reads(fault, upstream, LIST_ROUTE)


def test_a_404_for_the_whole_list_says_there_is_nothing_there(client, upstream, caplog):
    upstream.state.inject_fault(route=LIST_ROUTE, status=404, times=None)
    response = client.get("/projects/default/batches/")
    assert response.status_code == 404
    assert "no such object" in response.content.decode()
    assert re.search(r"request_id=req_[0-9a-f]{32}", caplog.text)


# -- detail -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", FAULTS, ids=FAULT_IDS)
def test_the_batch_detail_explains_each_upstream_fault_and_what_to_do(client, upstream, faulty, caplog, fault, running_batch):
    faulty(fault, BATCH_ROUTE)
    body = _get_honestly(client, f"/projects/default/batches/{running_batch}/", fault, caplog)
    assert "<html" in body
    assert 'class="error-hint"' in body  # the second sentence: what the operator can do
    _expected_reads(fault, upstream, BATCH_ROUTE)


@pytest.mark.parametrize("fault", FAULTS, ids=FAULT_IDS)
def test_the_batch_detail_poll_explains_each_upstream_fault_as_a_partial(client, upstream, faulty, caplog, fault, running_batch):
    faulty(fault, BATCH_ROUTE)
    body = _get_honestly(client, f"/projects/default/batches/{running_batch}/", fault, caplog, headers=HTMX)
    assert "<html" not in body
    assert 'class="error-hint"' in body
    _expected_reads(fault, upstream, BATCH_ROUTE)


@pytest.mark.parametrize("hx", [{}, HTMX], ids=["full page", "htmx poll"])
def test_a_batch_the_upstream_does_not_know_is_a_404_with_the_request_id_logged(client, upstream, caplog, hx):
    response = client.get("/projects/default/batches/batch_doesnotexist/", headers=hx)
    assert response.status_code == 404
    assert "does not know this id" in response.content.decode()
    assert upstream.state.counts[BATCH_ROUTE] == 1  # a 404 is an answer: never retried
    assert re.search(r"404 .*request_id=req_[0-9a-f]{32}", caplog.text)


def test_a_read_that_fails_once_is_retried_and_the_page_renders(client, upstream, running_batch):
    upstream.state.inject_fault(route=BATCH_ROUTE, status=503, times=1, headers={"retry-after-ms": "10"})
    response = client.get(f"/projects/default/batches/{running_batch}/")
    assert response.status_code == 200
    assert running_batch in response.content.decode()
    assert upstream.state.counts[BATCH_ROUTE] == 2


# -- cancel -------------------------------------------------------------------------------------------

# A cancel is sent once: the client retries it only when the connection could not be made at all
# (batches/upstream/client.py "Retry policy"), so every HTTP answer and a reset mid-body mean exactly one POST.
CANCEL_FAULTS = [f for f in FAULTS if f.inject.get("status") not in (404, 409)]


@pytest.mark.parametrize("fault", CANCEL_FAULTS, ids=[f.name for f in CANCEL_FAULTS])
def test_a_cancel_that_meets_an_upstream_fault_says_so_after_the_redirect_and_is_not_repeated(
    client, upstream, faulty, caplog, fault, running_batch
):
    faulty(fault, CANCEL_ROUTE)
    started = time.monotonic()
    response = client.post(f"/projects/default/batches/{running_batch}/cancel/")
    elapsed = time.monotonic() - started
    assert response.status_code == 302
    assert elapsed < TIME_BOUND
    assert upstream.state.counts[CANCEL_ROUTE] == (1 if fault.reaches_upstream else 0)
    entry = AuditEntry.objects.get(action=AuditEntry.Action.CANCEL)
    assert entry.outcome == AuditEntry.Outcome.ERROR
    assert fault.says in entry.message
    if fault.request_id:
        assert entry.upstream_request_id.startswith("req_")
    if not fault.network:
        shown = client.get(response["Location"])
        assert shown.status_code == 200
        assert "Cancel failed" in shown.content.decode()
        assert fault.says in html.unescape(shown.content.decode())
    assert all(record.exc_info is None for record in caplog.records)


@pytest.mark.parametrize("fault", CANCEL_FAULTS, ids=[f.name for f in CANCEL_FAULTS])
def test_an_htmx_cancel_that_meets_an_upstream_fault_answers_with_the_message_in_the_partial(
    client, upstream, faulty, caplog, fault, running_batch
):
    faulty(fault, CANCEL_ROUTE)
    started = time.monotonic()
    response = client.post(f"/projects/default/batches/{running_batch}/cancel/", headers={**HTMX, "HX-Target": "batch-live"})
    elapsed = time.monotonic() - started
    body = response.content.decode()
    # htmx swaps only 2xx answers, so the failed cancel's message travels in a 200 partial.
    assert response.status_code == 200
    assert "<html" not in body and "Traceback" not in body
    assert "Cancel failed" in body and fault.says in html.unescape(body)
    assert elapsed < 2 * TIME_BOUND  # the cancel, then one read of the batch's fresh state
    assert upstream.state.counts[CANCEL_ROUTE] == (1 if fault.reaches_upstream else 0)


def test_a_cancel_refused_with_409_says_the_batch_already_finished(client, upstream):
    finished = upstream.state.add_batch(status="completed")
    response = client.post(f"/projects/default/batches/{finished['id']}/cancel/", follow=True)
    assert response.status_code == 200
    assert "already finished" in response.content.decode()
    assert upstream.state.counts[CANCEL_ROUTE] == 1


def test_a_cancel_of_a_batch_the_upstream_does_not_know_is_a_404(client, upstream):
    response = client.post("/projects/default/batches/batch_doesnotexist/cancel/")
    assert response.status_code == 404
    assert upstream.state.counts[CANCEL_ROUTE] == 1


# -- what the upstream sends that the dashboard has never seen ----------------------------------------


def test_unknown_statuses_and_endpoints_render_on_the_list_and_the_detail(client, upstream):
    odd = upstream.state.add_batch(status="paused_for_review", endpoint="/v1/audio/speech", model="future-model")
    listing = client.get("/projects/default/batches/")
    assert listing.status_code == 200
    assert "paused for review" in listing.content.decode() or "paused_for_review" in listing.content.decode()
    detail = client.get(f"/projects/default/batches/{odd['id']}/")
    assert detail.status_code == 200
    body = detail.content.decode()
    assert "/v1/audio/speech" in body
    assert "paused" in body


# -- results page and file download -------------------------------------------------------------------

CONTENT_ROUTE = "GET /v1/files/{id}/content"
# Faults answered before any byte of the file: the page or download says so. (A break after the
# download started can only end the body early: the Content-Length we sent tells the browser it failed.)
# File content is read with a long read timeout (120 s: large files), so a 1 s stall is not a fault there.
CONTENT_FAULTS = [
    f for f in FAULTS if not f.inject.get("truncate") and f.inject.get("status") != 200 and f.name != "read timeout"
]


@pytest.fixture
def finished_batch(upstream, tmp_path):
    from tests.batch_files import make_batch

    return make_batch(upstream, tmp_path, status="completed")


@pytest.mark.parametrize("fault", CONTENT_FAULTS, ids=[f.name for f in CONTENT_FAULTS])
@pytest.mark.parametrize("hx", [{}, HTMX], ids=["full page", "htmx"])
def test_the_results_page_explains_each_fault_reading_the_result_files(client, upstream, faulty, caplog, fault, hx, finished_batch):
    faulty(fault, CONTENT_ROUTE)
    if fault.network:  # the batch lookup meets the same fault first
        route = BATCH_ROUTE
    else:
        route = CONTENT_ROUTE
    body = _get_honestly(client, f"/projects/default/batches/{finished_batch['id']}/results/", fault, caplog, headers=hx)
    assert ("<html" in body) == (not hx)
    reads = upstream.state.counts[route]
    assert reads == (fault.read_attempts if fault.reaches_upstream else 0)


@pytest.mark.parametrize("fault", CONTENT_FAULTS, ids=[f.name for f in CONTENT_FAULTS])
def test_a_file_download_explains_each_fault_before_the_first_byte(client, upstream, faulty, caplog, fault, finished_batch):
    faulty(fault, CONTENT_ROUTE)
    body = _get_honestly(client, f"/projects/default/batches/{finished_batch['id']}/files/output.jsonl", fault, caplog)
    assert "<html" in body
    if not fault.network:
        assert upstream.state.counts[CONTENT_ROUTE] == fault.read_attempts


# -- create -------------------------------------------------------------------------------------------

# Upload is never retried and create is retried only when the connection could not be made
# (batches/upstream/client.py "Retry policy"): one POST per attempt that reached the upstream, never two.
# (An upload has a long read timeout, 600 s, so a stall of a second is not a fault there.)
CREATE_FAULTS = [f for f in FAULTS if f.inject.get("status") not in (404, 200) and not f.network and f.name != "read timeout"] + [
    f for f in FAULTS if f.network == "refused"
]


def _create_form(token: str) -> dict:
    from django.core.files.uploadedfile import SimpleUploadedFile

    line = '{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m", "messages": []}}\n'
    return {
        "token": token, "endpoint": "auto", "completion_window": "24h", "input_file_id": "",
        "file": SimpleUploadedFile("requests.jsonl", line.encode(), content_type="application/jsonl"),
    }


@pytest.mark.parametrize("fault", CREATE_FAULTS, ids=[f.name for f in CREATE_FAULTS])
@pytest.mark.parametrize("route", ["POST /v1/files", "POST /v1/batches"], ids=["upload", "create"])
def test_a_create_that_meets_an_upstream_fault_says_so_and_sends_each_post_once(client, upstream, faulty, caplog, fault, route):
    faulty(fault, route)
    started = time.monotonic()
    response = client.post("/projects/default/batches/new/", _create_form(uuid.uuid4().hex))
    elapsed = time.monotonic() - started
    body = response.content.decode()
    assert response.status_code == fault.status, (response.status_code, html.unescape(body)[-1500:])
    assert response.status_code != 500 and "Traceback" not in body
    assert fault.says in html.unescape(body)
    assert elapsed < TIME_BOUND
    assert upstream.state.counts[route] == (1 if fault.reaches_upstream else 0)
    if route == "POST /v1/batches" and fault.reaches_upstream:
        assert upstream.state.counts["POST /v1/files"] == 1  # the file went up once and is offered again
    assert all(record.exc_info is None for record in caplog.records)
    assert AuditEntry.objects.filter(outcome=AuditEntry.Outcome.ERROR).exists()
