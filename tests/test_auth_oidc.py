"""DASHBOARD_AUTH=oidc in process: login required everywhere, groups claim → roles, configuration checks.
The real sign-in through a provider is tests/e2e/test_oidc_e2e.py."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import include, path

from batches.models import AuditEntry
from dashboard.urls import urlpatterns as dashboard_urlpatterns
from tests.servers import REPO, dashboard_env

# This module doubles as the URLconf DASHBOARD_AUTH=oidc produces (dashboard/urls.py adds these at start-up).
from batches.views.account import oidc_login_failed, oidc_signed_out  # noqa: E402
from tests.helpers import HTMX

urlpatterns = [
    *dashboard_urlpatterns,
    path("oidc/", include("mozilla_django_oidc.urls")),
    path("oidc/failed/", oidc_login_failed, name="oidc_login_failed"),
    path("oidc/signed-out/", oidc_signed_out, name="oidc_signed_out"),
]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

PROVIDER = "http://127.0.0.1:9"


@pytest.fixture
def oidc(settings, upstream):
    settings.DASHBOARD_AUTH = "oidc"
    settings.DASHBOARD_OPERATOR_GROUPS = ["batch-operators"]
    settings.AUTHENTICATION_BACKENDS = ["batches.oidc.DashboardOIDCBackend"]
    settings.OIDC_RP_CLIENT_ID = "dashboard"
    settings.OIDC_RP_CLIENT_SECRET = "secret"
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = f"{PROVIDER}/authorize"
    settings.OIDC_OP_TOKEN_ENDPOINT = f"{PROVIDER}/token"
    settings.OIDC_OP_USER_ENDPOINT = f"{PROVIDER}/userinfo"
    settings.OIDC_OP_JWKS_ENDPOINT = f"{PROVIDER}/jwks"
    settings.OIDC_RP_SIGN_ALGO = "RS256"
    settings.OIDC_USE_PKCE = True  # as dashboard/settings.py sets it
    settings.LOGIN_REDIRECT_URL = "batches:list"
    settings.LOGIN_REDIRECT_URL_FAILURE = "oidc_login_failed"
    settings.LOGOUT_REDIRECT_URL = "oidc_signed_out"
    return upstream


def backend():
    from batches.oidc import DashboardOIDCBackend

    return DashboardOIDCBackend()


def test_every_page_redirects_to_the_oidc_login_and_makes_no_upstream_call(client, oidc):
    oidc.state.reset_counts()
    response = client.get("/projects/default/batches/?limit=5")
    assert response.status_code == 302
    assert response["Location"] == "/oidc/authenticate/?next=%2Fprojects%2Fdefault%2Fbatches%2F%3Flimit%3D5"
    assert oidc.state.total_requests() == 0


def test_the_login_sends_the_browser_to_the_provider_with_pkce(client, oidc):
    response = client.get("/oidc/authenticate/?next=/audit/")
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(f"{PROVIDER}/authorize?")
    assert "client_id=dashboard" in location and "code_challenge=" in location
    assert "redirect_uri=http%3A%2F%2Ftestserver%2Foidc%2Fcallback%2F" in location


def test_an_htmx_request_without_a_session_redirects_the_whole_browser(client, oidc):
    response = client.get("/projects/default/batches/", headers=HTMX)
    assert response.status_code == 401
    assert response["HX-Redirect"].startswith("/oidc/authenticate/?next=")
    assert "<html" not in response.content.decode()


def test_a_post_without_a_session_is_refused_before_any_upstream_call(client, oidc):
    oidc.state.reset_counts()
    response = client.post("/projects/default/batches/batch_abc/cancel/")
    assert response.status_code == 302
    assert oidc.state.total_requests() == 0
    assert not AuditEntry.objects.exists()


def test_healthz_and_the_failure_page_answer_without_a_session(client, oidc):
    assert client.get("/healthz").status_code == 200
    response = client.get("/oidc/failed/")
    assert response.status_code == 401
    assert "did not succeed" in response.content.decode()


def test_a_new_person_is_named_by_email_and_gets_the_groups_from_the_claim(oidc):
    user = backend().create_user({"sub": "a1", "email": "alice@example.com", "groups": ["batch-operators", "x"]})
    assert user.get_username() == "alice@example.com"
    assert set(user.groups.values_list("name", flat=True)) == {"batch-operators", "x"}


def test_groups_are_replaced_at_every_sign_in(oidc):
    user = backend().create_user({"sub": "a1", "email": "alice@example.com", "groups": ["batch-operators"]})
    backend().update_user(user, {"sub": "a1", "email": "alice@example.com", "groups": "viewers, readers"})
    assert set(user.groups.values_list("name", flat=True)) == {"viewers", "readers"}
    backend().update_user(user, {"sub": "a1", "email": "alice@example.com"})
    assert not user.groups.exists()


def test_a_person_first_seen_through_the_proxy_is_found_by_email(oidc):
    get_user_model().objects.create_user("alice@example.com")
    found = backend().filter_users_by_claims({"email": "Alice@Example.com"})
    assert [u.get_username() for u in found] == ["alice@example.com"]


def test_claims_without_an_email_are_refused(oidc):
    assert not backend().verify_claims({"sub": "x"})
    assert backend().verify_claims({"sub": "x", "email": "x@example.com"})


def test_the_groups_claim_name_is_configurable(oidc, settings):
    from batches.oidc import claim_groups

    settings.OIDC_GROUPS_CLAIM = "roles"
    assert claim_groups({"roles": ["a", " b ", ""], "groups": ["c"]}) == ["a", "b"]
    assert claim_groups({"roles": 7}) == []


def test_an_operator_signed_in_with_oidc_may_cancel_and_is_audited(client, oidc, running_batch):
    user = get_user_model().objects.create_user("ops@example.com", email="ops@example.com")
    user.groups.add(Group.objects.create(name="batch-operators"))
    client.force_login(user, backend="batches.oidc.DashboardOIDCBackend")
    page = client.get(f"/projects/default/batches/{running_batch}/").content.decode()
    assert "Signed in as <strong>ops@example.com</strong>" in page
    assert "Sign out" in page
    assert client.post(f"/projects/default/batches/{running_batch}/cancel/").status_code == 302
    assert AuditEntry.objects.get().actor == "ops@example.com"


def test_someone_signed_in_with_oidc_outside_the_operator_groups_is_read_only(client, oidc, running_batch):
    user = get_user_model().objects.create_user("reader@example.com", email="reader@example.com")
    client.force_login(user, backend="batches.oidc.DashboardOIDCBackend")
    oidc.state.reset_counts()
    response = client.post(f"/projects/default/batches/{running_batch}/cancel/", headers=HTMX)
    assert response.status_code == 403
    assert "<html" not in response.content.decode()
    assert oidc.state.total_requests() == 0
    # Signing out is not acting: a read-only person may still do it.
    assert client.post("/oidc/logout/").status_code == 302


def test_oidc_mode_refuses_to_start_without_its_settings(tmp_path):
    env = dashboard_env(tmp_path, DASHBOARD_AUTH="oidc", DJANGO_SETTINGS_MODULE="dashboard.settings",
                        OIDC_RP_CLIENT_ID="dashboard")
    result = subprocess.run([sys.executable, "-c", "import dashboard.settings"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "DASHBOARD_AUTH=oidc needs these settings: OIDC_RP_CLIENT_SECRET" in result.stderr
