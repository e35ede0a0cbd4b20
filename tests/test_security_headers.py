"""Hardened defaults: every kind of page (full, htmx partial, refusal, error) carries the security headers,
and no page needs anything the strict Content-Security-Policy forbids."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import path

from batches.models import AuditEntry
from dashboard.urls import urlpatterns as dashboard_urlpatterns
from tests.helpers import HTMX


def boom(request):
    raise RuntimeError("a bug in the dashboard")


# This module doubles as a URLconf: the dashboard's URLs plus a view with a bug, for the 500 page.
urlpatterns = [*dashboard_urlpatterns, path("boom/", boom)]
handler403 = "batches.views.errors.permission_denied"
handler404 = "batches.views.errors.page_not_found"
handler500 = "batches.views.errors.server_error"

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

USER = {"X-Forwarded-Email": "alice@example.com"}


def assert_hardened(response, label: str) -> None:
    csp = response.get("Content-Security-Policy", "")
    assert "default-src 'none'" in csp, label
    # Django adds the nonce source only when the page used the nonce (a partial usually does not).
    assert re.search(r"script-src 'self'( 'nonce-[^']+')?;", csp), label
    assert "style-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp, label
    assert "frame-ancestors 'none'" in csp and "form-action 'self'" in csp, label
    assert response.get("X-Frame-Options") == "DENY", label
    assert response.get("X-Content-Type-Options") == "nosniff", label
    assert response.get("Referrer-Policy") == "same-origin", label
    assert response.get("Cross-Origin-Opener-Policy") == "same-origin", label
    if response.get("Content-Type", "").startswith("text/html"):
        assert_csp_clean(response.content.decode(), csp, label)


def assert_csp_clean(body: str, csp: str, label: str) -> None:
    """Nothing in the HTML that the policy would block: inline scripts carry this response's nonce."""
    found = re.search(r"'nonce-([^']+)'", csp)
    nonce = found.group(1) if found else None
    for tag in re.findall(r"<script\b[^>]*>", body):
        if "src=" not in tag:
            assert nonce and f'nonce="{nonce}"' in tag, (label, tag)
    assert not re.search(r"\sstyle\s*=", body), label
    assert not re.search(r"\son[a-z]+\s*=", body), label
    assert "hx-on" not in body, label
    assert "javascript:" not in body, label


@pytest.fixture
def proxy(settings, upstream):
    settings.DASHBOARD_AUTH = "proxy"
    settings.DASHBOARD_OPERATOR_GROUPS = ["operators"]
    return upstream


def test_every_page_and_partial_carries_the_security_headers(client, proxy, running_batch):
    AuditEntry.objects.create(actor="alice@example.com", action="cancel", batch_id=running_batch, outcome="success")
    operator = {**USER, "X-Forwarded-Groups": "operators"}
    pages = {
        "list": client.get("/projects/default/batches/", headers=USER),
        "list partial": client.get("/projects/default/batches/", headers={**USER, **HTMX}),
        "detail": client.get(f"/projects/default/batches/{running_batch}/", headers=operator),
        "detail partial": client.get(f"/projects/default/batches/{running_batch}/", headers={**operator, **HTMX}),
        "create form": client.get("/projects/default/batches/new/", headers=operator),
        "audit": client.get("/audit/", headers=USER),
        "audit partial": client.get("/audit/", headers={**USER, **HTMX}),
        "root redirect": client.get("/", headers=USER),
        "healthz": client.get("/healthz"),
        "401 missing identity": client.get("/projects/default/batches/"),
        "401 partial": client.get("/projects/default/batches/", headers=HTMX),
        "403 untrusted peer": client.get("/projects/default/batches/", headers=USER, REMOTE_ADDR="192.0.2.1"),
        "403 read-only": client.post(f"/projects/default/batches/{running_batch}/cancel/", headers=USER),
        "403 read-only partial": client.post(f"/projects/default/batches/{running_batch}/cancel/", headers={**USER, **HTMX}),
        "404 unknown url": client.get("/no/such/page/", headers=USER),
        "404 partial": client.get("/no/such/page/", headers={**USER, **HTMX}),
        "404 unknown batch": client.get("/projects/default/batches/batch_doesnotexist/", headers=USER),
    }
    expected = {"root redirect": 302, "healthz": 200, "404 unknown url": 404, "404 partial": 404,
                "404 unknown batch": 404}
    for label, response in pages.items():
        if label.startswith(("401",)):
            assert response.status_code == 401, label
        elif label.startswith("403"):
            assert response.status_code == 403, label
        else:
            assert response.status_code == expected.get(label, 200), label
        assert_hardened(response, label)
        if "partial" in label:
            assert "<html" not in response.content.decode(), label


def test_the_upstream_error_page_carries_the_security_headers(client, proxy):
    proxy.state.inject_fault(route="GET /v1/batches", status=503, times=10)
    response = client.get("/projects/default/batches/", headers=USER)
    assert response.status_code == 503  # the upstream's 503, after the client's retries
    assert_hardened(response, "upstream error")


def test_the_500_page_carries_the_security_headers_and_no_traceback(proxy):
    client = Client(raise_request_exception=False)
    response = client.get("/boom/", headers=USER)
    assert response.status_code == 500
    body = response.content.decode()
    assert "Something went wrong in the dashboard" in body
    assert "RuntimeError" not in body and "Traceback" not in body
    assert_hardened(response, "500")


def test_the_404_page_does_not_show_django_internals(client, proxy):
    body = client.get("/no/such/page/", headers=USER).content.decode()
    assert "Resolver404" not in body
    assert "There is nothing at this address." in body
    assert "Signed in as <strong>alice@example.com</strong>" in body


def test_a_post_without_a_csrf_token_is_refused_before_anything_happens(proxy, running_batch):
    client = Client(enforce_csrf_checks=True)
    operator = {**USER, "X-Forwarded-Groups": "operators"}
    client.get(f"/projects/default/batches/{running_batch}/", headers=operator)
    proxy.state.reset_counts()
    response = client.post(f"/projects/default/batches/{running_batch}/cancel/", headers=operator)
    assert response.status_code == 403
    body = response.content.decode()
    assert "This form has expired" in body
    assert "Signed in as" in body
    assert_hardened(response, "403 csrf")
    partial = client.post(f"/projects/default/batches/{running_batch}/cancel/", headers={**operator, **HTMX})
    assert partial.status_code == 403 and "<html" not in partial.content.decode()
    assert "security token" in partial.content.decode()
    assert proxy.state.total_requests() == 0
    assert not AuditEntry.objects.exists()


def test_a_post_with_a_wrong_csrf_token_is_refused(proxy, running_batch):
    client = Client(enforce_csrf_checks=True)
    operator = {**USER, "X-Forwarded-Groups": "operators"}
    client.get(f"/projects/default/batches/{running_batch}/", headers=operator)
    proxy.state.reset_counts()
    response = client.post(f"/projects/default/batches/{running_batch}/cancel/", headers={**operator, "X-CSRFToken": "x" * 32})
    assert response.status_code == 403
    assert proxy.state.total_requests() == 0


def test_the_token_in_the_page_makes_the_htmx_post_pass_the_csrf_check(proxy, running_batch):
    client = Client(enforce_csrf_checks=True)
    operator = {**USER, "X-Forwarded-Groups": "operators"}
    page = client.get(f"/projects/default/batches/{running_batch}/", headers=operator).content.decode()
    token = re.search(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'', page).group(1)
    response = client.post(
        f"/projects/default/batches/{running_batch}/cancel/", headers={**operator, **HTMX, "X-CSRFToken": token, "HX-Target": "batch-live"}
    )
    assert response.status_code == 200
    assert AuditEntry.objects.get().outcome == "success"


def test_cookies_are_http_only_and_samesite(client, proxy):
    response = client.get("/projects/default/batches/", headers=USER)
    session = response.cookies["sessionid"]
    assert session["httponly"] and session["samesite"] == "Lax"
    csrf = response.cookies.get("csrftoken")
    if csrf is not None:
        assert csrf["httponly"] and csrf["samesite"] == "Strict"
