"""DASHBOARD_AUTH=oidc end to end: a real OpenID Connect provider process (PyPI oidc-provider-mock) on
loopback, the dashboard under gunicorn, and a headless Chromium that signs in through the provider."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.helpers import LOOPBACK_HOSTS, free_port, start_dashboard, stop, wait_for_http

ALICE = {"sub": "alice", "email": "alice@example.com", "groups": ["batch-operators"]}
BOB = {"sub": "bob", "email": "bob@example.com", "groups": ["viewers"]}


@pytest.fixture(scope="module")
def oidc_provider(tmp_path_factory) -> Iterator[str]:
    """oidc-provider-mock on a free loopback port, with two predefined users."""
    log = tmp_path_factory.mktemp("oidc") / "provider.log"
    port = free_port()
    command = [str(Path(sys.executable).with_name("oidc-provider-mock")), "--host", "127.0.0.1", "--port", str(port),
               "--user-claims", json.dumps(ALICE), "--user-claims", json.dumps(BOB)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/.well-known/openid-configuration", process, log)
        yield url
    finally:
        stop(process)


@pytest.fixture(scope="module")
def oidc_dashboard(oidc_provider, tmp_path_factory):
    env = {
        "DASHBOARD_AUTH": "oidc",
        "DASHBOARD_OPERATOR_GROUPS": "batch-operators",
        "OIDC_RP_CLIENT_ID": "batch-dashboard",
        "OIDC_RP_CLIENT_SECRET": "e2e-client-secret",
        "OIDC_OP_AUTHORIZATION_ENDPOINT": f"{oidc_provider}/oauth2/authorize",
        "OIDC_OP_TOKEN_ENDPOINT": f"{oidc_provider}/oauth2/token",
        "OIDC_OP_USER_ENDPOINT": f"{oidc_provider}/userinfo",
        "OIDC_OP_JWKS_ENDPOINT": f"{oidc_provider}/jwks",
        "OIDC_RP_SIGN_ALGO": "RS256",
        "OIDC_RP_SCOPES": "openid email profile",
    }
    with start_dashboard(tmp_path_factory.mktemp("oidc-dashboard"), extra_env=env) as server:
        yield server


@pytest.fixture
def loopback_page(page):
    """The provider's page links a CDN stylesheet; nothing may leave 127.0.0.1, so that is aborted."""

    def route(route):
        host = urlsplit(route.request.url).hostname or ""
        if host in LOOPBACK_HOSTS or route.request.url.startswith(("data:", "about:")):
            route.continue_()
        else:
            route.abort()

    page.route("**/*", route)
    return page


def sign_in(page, dashboard_url: str, who: str, path: str = "/projects/default/batches/") -> None:
    page.goto(dashboard_url + path)
    assert "/oauth2/authorize" in page.url  # sent to the provider, not shown a dashboard page
    page.get_by_role("button", name=f"Authorize as {who}").click()
    page.wait_for_url(f"{dashboard_url}/**")


def test_a_person_signs_in_through_the_oidc_provider_and_is_named_on_the_page(loopback_page, oidc_dashboard):
    page = loopback_page
    console_errors = []
    page.on("console", lambda msg: msg.type == "error" and page.url.startswith(oidc_dashboard.url)
            and console_errors.append(msg.text))
    sign_in(page, oidc_dashboard.url, "alice", path="/audit/")
    assert page.url == f"{oidc_dashboard.url}/audit/"  # back where they asked to go
    identity = page.locator(".identity")
    assert "Signed in as alice@example.com" in identity.inner_text()
    assert "read-only" not in identity.inner_text()  # alice's groups claim makes her an operator
    page.goto(oidc_dashboard.url + "/projects/default/batches/")
    assert "alice@example.com" in page.locator(".identity").inner_text()
    assert console_errors == []


def test_a_person_outside_the_operator_group_is_read_only(loopback_page, oidc_dashboard):
    page = loopback_page
    sign_in(page, oidc_dashboard.url, "bob")
    identity = page.locator(".identity").inner_text()
    assert "Signed in as bob@example.com" in identity
    assert "read-only" in identity
    assert page.get_by_role("link", name="New batch").count() == 0


def test_signing_out_ends_the_session(loopback_page, oidc_dashboard):
    page = loopback_page
    sign_in(page, oidc_dashboard.url, "alice")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{oidc_dashboard.url}/oidc/signed-out/")
    assert "You have signed out" in page.content()
    page.goto(oidc_dashboard.url + "/projects/default/batches/")
    assert "/oauth2/authorize" in page.url


def test_without_a_session_pages_redirect_to_the_provider_and_make_no_upstream_call(oidc_dashboard):
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    oidc_dashboard.reset_counts()
    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(oidc_dashboard.url + "/projects/default/batches/", timeout=10)
        raise AssertionError("expected a redirect")
    except urllib.error.HTTPError as err:
        assert err.code == 302
        assert err.headers["Location"].startswith("/oidc/authenticate/?next=%2Fprojects%2Fdefault%2Fbatches%2F")
    assert oidc_dashboard.stats()["total"] == 0
