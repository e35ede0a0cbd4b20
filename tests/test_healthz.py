"""GET /healthz: for load balancers; no upstream call, no identity needed."""

from unittest import mock

import pytest
from django.db.utils import OperationalError


@pytest.mark.django_db
def test_healthz_answers_200_when_process_and_database_are_fine(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_healthz_answers_503_when_the_database_is_unreachable(client):
    with mock.patch("django.db.backends.utils.CursorWrapper.execute", side_effect=OperationalError("down")):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


@pytest.mark.django_db
def test_healthz_needs_no_identity_even_behind_the_sso_proxy(client, settings):
    settings.DASHBOARD_AUTH = "proxy"
    response = client.get("/healthz")
    assert response.status_code == 200


@pytest.mark.django_db
def test_healthz_makes_no_upstream_call(client, upstream):
    upstream.state.reset_counts()
    client.get("/healthz")
    assert upstream.state.total_requests() == 0
