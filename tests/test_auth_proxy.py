"""DASHBOARD_AUTH=proxy: the identity comes from the authenticating proxy's header, and only from it."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from batches.access import header_key
from tests.helpers import HTMX

pytestmark = pytest.mark.django_db

ALICE = {"X-Forwarded-Email": "alice@example.com"}


@pytest.fixture
def behind_proxy(proxy_mode, upstream):
    """Proxy sign-in, everyone an operator, the emulator's request counts at zero."""
    proxy_mode(operator_groups=[])
    upstream.state.reset_counts()
    return upstream


def upstream_calls(emulator) -> int:
    return emulator.state.total_requests()


def test_a_request_without_an_identity_gets_a_clear_401_and_no_upstream_call(client, behind_proxy):
    response = client.get("/projects/default/batches/")
    assert response.status_code == 401
    body = response.content.decode()
    assert "No signed-in identity reached the dashboard" in body
    assert "Nothing was sent to the Batch API" in body
    assert upstream_calls(behind_proxy) == 0


def test_an_identity_from_an_untrusted_peer_is_refused_with_403_and_no_upstream_call(client, behind_proxy):
    response = client.get("/projects/default/batches/", headers=ALICE, REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 403
    body = response.content.decode()
    assert "did not come through the dashboard's sign-in proxy" in body
    assert "alice@example.com" not in body
    assert upstream_calls(behind_proxy) == 0
    assert not get_user_model().objects.filter(username="alice@example.com").exists()


def test_the_trusted_proxies_setting_decides_which_peer_is_believed(client, behind_proxy, settings):
    import ipaddress

    settings.DASHBOARD_TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/8")]
    assert client.get("/projects/default/batches/", headers=ALICE, REMOTE_ADDR="127.0.0.1").status_code == 403
    assert client.get("/projects/default/batches/", headers=ALICE, REMOTE_ADDR="10.1.2.3").status_code == 200


def test_a_trusted_identity_is_signed_in_created_on_first_sight_and_shown(client, behind_proxy):
    response = client.get("/projects/default/batches/", headers=ALICE)
    assert response.status_code == 200
    assert "Signed in as <strong>alice@example.com</strong>" in response.content.decode()
    assert get_user_model().objects.filter(username="alice@example.com").count() == 1
    client.get("/projects/default/batches/", headers=ALICE)
    assert get_user_model().objects.filter(username="alice@example.com").count() == 1


def test_a_changed_identity_header_switches_the_session_to_the_new_person(client, behind_proxy):
    client.get("/projects/default/batches/", headers=ALICE)
    alice_session = client.session.session_key
    response = client.get("/projects/default/batches/", headers={"X-Forwarded-Email": "bob@example.com"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "Signed in as <strong>bob@example.com</strong>" in body
    assert "alice@example.com" not in body
    assert client.session.session_key != alice_session
    assert response.wsgi_request.user.get_username() == "bob@example.com"


def test_a_session_is_not_enough_once_the_proxy_stops_sending_the_identity(client, behind_proxy):
    assert client.get("/projects/default/batches/", headers=ALICE).status_code == 200
    response = client.get("/projects/default/batches/")
    assert response.status_code == 401
    assert "_auth_user_id" not in client.session
    assert client.get("/projects/default/batches/").status_code == 401


def test_a_session_cookie_from_an_untrusted_peer_is_not_enough(client, behind_proxy):
    assert client.get("/projects/default/batches/", headers=ALICE).status_code == 200
    response = client.get("/projects/default/batches/", REMOTE_ADDR="198.51.100.1")
    assert response.status_code == 403


def test_an_identity_the_dashboard_cannot_store_is_refused(client, behind_proxy):
    too_long = "a" * 200 + "@example.com"
    response = client.get("/projects/default/batches/", headers={"X-Forwarded-Email": too_long})
    assert response.status_code == 401
    assert "an identity the dashboard cannot use" in response.content.decode()
    assert not get_user_model().objects.exists()


def test_the_identity_header_name_is_configurable(client, behind_proxy, settings):
    settings.DASHBOARD_AUTH_HEADER = "Cf-Access-Authenticated-User-Email"
    assert client.get("/projects/default/batches/", headers=ALICE).status_code == 401
    response = client.get("/projects/default/batches/", headers={"Cf-Access-Authenticated-User-Email": "carol@example.com"})
    assert response.status_code == 200
    assert "carol@example.com" in response.content.decode()


def test_the_refusal_is_a_partial_for_htmx_requests(client, behind_proxy):
    response = client.get("/projects/default/batches/", headers=HTMX)
    assert response.status_code == 401
    body = response.content.decode()
    assert "<html" not in body
    assert "No signed-in identity reached the dashboard" in body


def test_healthz_answers_without_an_identity(client, behind_proxy):
    assert client.get("/healthz").status_code == 200


def test_a_header_spelled_with_underscores_is_indistinguishable_in_wsgi(rf):
    """Why the trusted peer matters: WSGI maps both spellings to the same key, so the dashboard cannot
    tell them apart. A proxy that overwrites the header and gunicorn dropping underscored headers (see
    test_gunicorn_drops_an_identity_header_spelled_with_underscores) are what keep it out."""
    dashed = rf.get("/", headers={"X-Forwarded-Email": "a@example.com"})
    underscored = rf.get("/", headers={"X_Forwarded_Email": "a@example.com"})
    assert header_key("X-Forwarded-Email") in dashed.META
    assert header_key("X-Forwarded-Email") in underscored.META


@pytest.fixture(scope="module")
def gunicorn_proxy_mode(tmp_path_factory):
    from tests.servers import dashboard_env, run_gunicorn

    env = dashboard_env(tmp_path_factory.mktemp("gunicorn"), DASHBOARD_AUTH="proxy")
    with run_gunicorn(env) as base_url:
        yield base_url


def _raw_get(base_url: str, path: str, headers: dict[str, str]) -> tuple[int, str]:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_gunicorn_drops_an_identity_header_spelled_with_underscores(gunicorn_proxy_mode):
    status, body = _raw_get(gunicorn_proxy_mode, "/audit/", {"X_Forwarded_Email": "mallory@example.com"})
    assert status == 401
    assert "mallory@example.com" not in body
    assert "No signed-in identity reached the dashboard" in body


def test_gunicorn_passes_the_dashed_identity_header_from_the_trusted_proxy(gunicorn_proxy_mode):
    status, body = _raw_get(gunicorn_proxy_mode, "/audit/", {"X-Forwarded-Email": "alice@example.com"})
    assert status == 200
    assert "Signed in as <strong>alice@example.com</strong>" in body


def test_an_underscored_copy_cannot_override_the_header_the_proxy_set(gunicorn_proxy_mode):
    """The proxy sets X-Forwarded-Email; a client adds X_Forwarded_Email hoping WSGI picks it instead."""
    status, body = _raw_get(
        gunicorn_proxy_mode,
        "/audit/",
        {"X-Forwarded-Email": "alice@example.com", "X_Forwarded_Email": "mallory@example.com"},
    )
    assert status == 200
    assert "Signed in as <strong>alice@example.com</strong>" in body
    assert "mallory@example.com" not in body
