"""Issue #23 item 7: /metrics refuses a request from loopback that any proxy header says was relayed for
someone outside DASHBOARD_METRICS_ALLOWED, whichever header the proxy uses (or one it relayed for someone
it does not name)."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "headers",
    [
        {"Forwarded": "for=203.0.113.9"},
        {"Forwarded": 'for="203.0.113.9:4711"'},
        {"Forwarded": 'for="[2001:db8::17]:4711";proto=https'},
        {"Forwarded": "FOR=203.0.113.9"},
        {"Forwarded": "for=127.0.0.1, for=203.0.113.9"},
        {"Forwarded": "for=127.0.0.1;by=127.0.0.1, for = 203.0.113.9"},
        {"Forwarded": "for=unknown"},
        {"Forwarded": "for=_hidden"},
        {"Forwarded": "proto=https;host=dash.example.com"},
        {"X-Forwarded-For": "127.0.0.1, 203.0.113.9"},
        {"X-Real-IP": "203.0.113.9"},
        {"True-Client-IP": "203.0.113.9"},
        {"CF-Connecting-IP": "203.0.113.9"},
        {"X-Client-IP": "203.0.113.9"},
        {"Via": "1.1 proxy.example"},
        {"X-Forwarded-Email": "someone@example.com"},
    ],
)
def test_a_loopback_request_relayed_for_someone_else_gets_the_same_404(headers):
    assert Client().get("/metrics", headers=headers).status_code == 404


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Forwarded": "for=127.0.0.1"},
        {"Forwarded": 'for="[::1]:9090"'},
        {"X-Forwarded-For": "127.0.0.1", "Forwarded": "for=127.0.0.1:55000"},
        {"X-Forwarded-Proto": "https"},  # not an address: says nothing about who asked
    ],
)
def test_a_loopback_request_relayed_only_for_allowed_addresses_is_answered(headers):
    assert Client().get("/metrics", headers=headers).status_code == 200


def test_readyz_details_follow_the_same_rule(settings):
    settings.DASHBOARD_READY_REQUIRE_SYNC = True
    settings.DASHBOARD_READY_REQUIRE_WORKER = False
    from batches.models import SyncState

    SyncState.objects.create(project="default", last_error="upstream said: secret detail")
    local = Client().get("/readyz").json()
    relayed = Client().get("/readyz", headers={"Forwarded": "for=203.0.113.9"}).json()
    assert local["checks"]["sync"]["projects"]["default"]["last_error"] == "upstream said: secret detail"
    assert "last_error" not in relayed["checks"]["sync"]["projects"]["default"]
