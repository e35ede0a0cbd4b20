"""Bulk cancel from a filtered view: select or "all N matching" → one confirmation → each cancel
through services.batch_request_cancel (audited), outcome per batch, only operators of each batch's project."""

from __future__ import annotations

import re

import pytest

from batches.index.store import upsert_batches
from batches.models import AuditEntry
from batches.upstream import Batch
from find_factory import make, synced
from tests.helpers import EMULATOR_KEY

pytestmark = pytest.mark.django_db

URL = "/projects/default/batches/bulk-cancel/"


def index_emulator(emulator, project="default"):
    """Index every batch the emulator holds, as a sync pass would."""
    upsert_batches(project, [Batch.from_api(b) for b in emulator.state.list_batches()])
    synced(project)


def ids_with(emulator, *statuses):
    return [b["id"] for b in emulator.state.list_batches() if b["status"] in statuses]


def outcomes(body: str) -> dict[str, str]:
    return dict(re.findall(r'<td><code>([^<]+)</code></td>.*?<strong class="find-outcome">([^<]+)</strong>', body, re.S))


def test_the_confirmation_says_how_many_are_cancellable_and_sends_nothing(client, upstream):
    index_emulator(upstream)
    running = ids_with(upstream, "in_progress", "validating", "finalizing")[:2]
    finished = ids_with(upstream, "completed")[:1]
    upstream.state.reset_counts()
    picks = [f"default/{i}" for i in running + finished]
    response = client.post(URL, {"pick": picks})
    body = response.content.decode()
    assert response.status_code == 200
    assert "Cancel 2 batches?" in body
    assert "3 selected; 2 can be cancelled" in body
    assert "already finished (completed)" in body
    assert upstream.state.total_requests() == 0
    assert not AuditEntry.objects.exists()
    assert body.count('name="pick"') == 3 and 'name="confirm" value="1"' in body


def test_confirming_cancels_each_through_the_audited_service_and_shows_each_outcome(client, upstream):
    index_emulator(upstream)
    running = ids_with(upstream, "in_progress")[:2]
    done = ids_with(upstream, "completed")[0]
    picks = [f"default/{i}" for i in (*running, done)] + ["default/batch_unknown"]
    body = client.post(URL, {"pick": picks, "confirm": "1"}).content.decode()
    got = outcomes(body)
    assert got[running[0]] == "cancelling" and got[running[1]] == "cancelling"
    assert got[done] == "already finished"
    assert got["batch_unknown"] == "not found"
    for batch_id in running:
        assert upstream.state.get_batch(batch_id)["status"] == "cancelling"
    entries = AuditEntry.objects.filter(action="cancel")
    assert sorted(e.batch_id for e in entries) == sorted(running)  # no call, no entry, for the others
    assert all(e.outcome == "success" for e in entries)


def test_a_batch_the_index_thinks_is_running_but_finished_upstream_is_409_already_finished(client, upstream):
    index_emulator(upstream)
    batch_id = ids_with(upstream, "in_progress")[0]
    upstream.state.get_batch(batch_id)  # still running upstream...
    upstream.state.cancel_batch(batch_id)
    upstream.state.advance(3600)  # ...until it is cancelled there; the index still says in_progress
    body = client.post(URL, {"pick": [f"default/{batch_id}"], "confirm": "1"}).content.decode()
    assert outcomes(body)[batch_id] == "already finished"
    assert "409" in body
    assert AuditEntry.objects.get(batch_id=batch_id).upstream_status == 409


def test_all_matching_takes_the_filter_from_the_form(client, upstream):
    index_emulator(upstream)
    running = set(ids_with(upstream, "in_progress"))
    body = client.post(URL, {"all": "1", "status": "in_progress"}).content.decode()
    listed = set(re.findall(r'<td><code>([^<]+)</code></td>', body))
    assert listed == running
    assert f"{len(running)} selected; {len(running)} can be cancelled" in body


def test_all_matching_is_capped_at_500_and_says_so(client, settings):
    synced()
    upsert_batches("default", [Batch.from_api({"id": f"batch_{i:04d}", "status": "in_progress", "created_at": i}) for i in range(505)])
    body = client.post(URL, {"all": "1", "status": "in_progress"}).content.decode()
    assert "At most 500 batches per action" in body
    assert body.count('name="pick"') == 500


def test_the_filtered_page_offers_checkboxes_and_the_bulk_form_to_operators(client, upstream):
    index_emulator(upstream)
    running = ids_with(upstream, "in_progress")[0]
    body = client.get("/projects/default/batches/?status=in_progress").content.decode()
    assert f'name="pick" value="default/{running}" form="bulk-cancel-form"' in body
    assert '<form id="bulk-cancel-form" class="find-bulk" method="post" action="/projects/default/batches/bulk-cancel/">' in body
    assert 'name="csrfmiddlewaretoken"' in body
    assert '<input type="hidden" name="status" value="in_progress">' in body


def test_bulk_cancel_needs_a_csrf_token(upstream):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post(URL, {"pick": ["default/batch_x"], "confirm": "1"})
    assert response.status_code == 403


@pytest.fixture
def operated_projects(write_projects, proxy_mode, upstream):
    """"alpha" is operated by alpha-ops, "beta" by beta-ops; both point at the emulator."""
    proxy_mode(operator_groups=[])
    # The emulator has one key; the projects file refuses two projects with one key, so give each its
    # own variable holding a distinct key the emulator accepts only for alpha (beta is never called).
    write_projects(
        f'[projects.alpha]\napi_key_env = "K_ALPHA"\nbase_url = "{upstream.base_url}"\noperator_groups = ["alpha-ops"]\n'
        f'[projects.beta]\napi_key_env = "K_BETA"\nbase_url = "{upstream.base_url}"\noperator_groups = ["beta-ops"]\n'
        f'[projects.hidden]\napi_key_env = "K_HIDDEN"\nbase_url = "{upstream.base_url}"\nviewer_groups = ["x"]\n',
        K_ALPHA=EMULATOR_KEY, K_BETA="sk-beta", K_HIDDEN="sk-hidden",
    )
    index_emulator(upstream, "alpha")
    running = ids_with(upstream, "in_progress")
    make("beta", id="batch_beta1", status="in_progress")
    make("hidden", id="batch_hid1", status="in_progress")
    return running


def test_search_bulk_cancel_refuses_batches_of_projects_the_person_does_not_operate(client, upstream, operated_projects):
    running = operated_projects[0]
    headers = {"X-Forwarded-Email": "ann@example.com", "X-Forwarded-Groups": "alpha-ops"}
    picks = [f"alpha/{running}", "beta/batch_beta1", "hidden/batch_hid1"]
    confirm = client.post("/search/bulk-cancel/", {"pick": picks}, headers=headers).content.decode()
    assert "3 selected; 1 can be cancelled" in confirm
    assert "refused: you are not an operator" in confirm
    # A project the person may not see is answered as unknown: no name, no status, "not found".
    hidden_row = re.search(r'<td><code>batch_hid1</code></td>(.*?)</tr>', confirm, re.S).group(1)
    assert '<span class="muted">—</span>' in hidden_row and "not found" in hidden_row and "in_progress" not in hidden_row
    upstream.state.reset_counts()
    body = client.post("/search/bulk-cancel/", {"pick": picks, "confirm": "1"}, headers=headers).content.decode()
    got = outcomes(body)
    assert got == {running: "cancelling", "batch_beta1": "refused", "batch_hid1": "not found"}
    assert upstream.state.total_requests() == 1
    assert AuditEntry.objects.get().project == "alpha"


def test_a_project_operator_page_post_is_refused_for_a_look_only_person(client, operated_projects):
    headers = {"X-Forwarded-Email": "bob@example.com", "X-Forwarded-Groups": "beta-ops"}
    response = client.post("/projects/alpha/batches/bulk-cancel/", {"pick": [f"alpha/{operated_projects[0]}"], "confirm": "1"}, headers=headers)
    assert response.status_code == 403
    assert not AuditEntry.objects.exists()


def test_search_bulk_cancel_works_for_an_operator_of_one_project_only(client, upstream, operated_projects, settings):
    """With a global operator rule the person does not meet, operating one project through its own
    operator_groups is enough to reach /search/'s bulk cancel, which then checks each batch."""
    settings.DASHBOARD_OPERATOR_GROUPS = ["global-ops"]
    running = operated_projects[0]
    headers = {"X-Forwarded-Email": "ann@example.com", "X-Forwarded-Groups": "alpha-ops"}
    body = client.post(
        "/search/bulk-cancel/", {"pick": [f"alpha/{running}", "beta/batch_beta1"], "confirm": "1"}, headers=headers
    ).content.decode()
    assert outcomes(body) == {running: "cancelling", "batch_beta1": "refused"}
    outsider = {"X-Forwarded-Email": "zed@example.com", "X-Forwarded-Groups": "nobody"}
    refused = client.post("/search/bulk-cancel/", {"pick": [f"alpha/{running}"], "confirm": "1"}, headers=outsider)
    assert refused.status_code == 403
