"""Block at the limit, against the emulator over real HTTP: a create refused by the budget uploads
nothing and creates nothing, says why in one sentence naming the budget and the spend, and is in
the audit trail; running batches are untouched."""

from __future__ import annotations

import time

import pytest

from batches.models import AuditEntry
from tests.helpers import EMULATOR_KEY, HTMX, RESEARCH_KEY
from tests.costs_helpers import PRICES, projects_toml, record
from tests.test_batch_create import URL, form_data, jsonl_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def budget(upstream, write_projects, settings):
    settings.DASHBOARD_PRICE_OVERRIDES = PRICES

    def configure(table: str):
        write_projects(projects_toml(upstream.base_url, budget="[projects.default.budget]\n" + table),
                       TEST_KEY_DEFAULT=EMULATOR_KEY, TEST_KEY_RESEARCH=RESEARCH_KEY)
        upstream.state.reset_counts()
        return upstream

    return configure


def spent(dollars: int) -> None:
    """A batch created a minute ago that cost ``dollars`` (at $10 per 1M input tokens)."""
    record("batch_spent", int(time.time()) - 60, input_tokens=dollars * 100_000, output=0)


def uploads_and_creates(emulator) -> tuple[int, int]:
    counts = emulator.state.stats()["counts"]
    return counts.get("POST /v1/files", 0), counts.get("POST /v1/batches", 0)


def test_a_create_over_a_reached_budget_uploads_nothing_and_says_why(budget, client):
    emulator = budget("monthly_usd = 5\nblock_at_limit = true\n")
    spent(6)
    response = client.post(URL, form_data(jsonl_bytes(3, model="gpt-test")))
    assert response.status_code == 403
    html = response.content.decode()
    assert "Refused: Production&#x27;s budget is $5.00 this month and its spend so far is $6.00, so the budget is reached." in html
    assert "Nothing was uploaded and no batch was created." in html
    assert uploads_and_creates(emulator) == (0, 0)
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.outcome, entry.batch_id, entry.file_id) == ("create", "refused", "", "")
    assert entry.message.startswith("Refused: Production's budget is $5.00 this month and its spend so far is $6.00")
    audit = client.get("/audit/").content.decode()
    assert '<span class="badge audit-refused">refused</span>' in audit and "so the budget is reached" in audit


def test_a_file_whose_estimate_would_cross_the_budget_is_refused_before_it_is_uploaded(budget, client):
    emulator = budget("monthly_usd = 5\nblock_at_limit = true\n")
    spent(4)
    # Every line sets max_tokens, so the estimate is the cost at that maximum: 3 × 20,000 output tokens = $1.20.
    lines = b"".join(
        f'{{"custom_id": "r{i}", "method": "POST", "url": "/v1/chat/completions", "body": {{"model": "gpt-test", '
        f'"max_tokens": 20000, "messages": [{{"role": "user", "content": "hi"}}]}}}}\n'.encode()
        for i in range(3)
    )
    response = client.post(URL, form_data(lines), headers=HTMX)
    assert response.status_code == 403 and "<html" not in response.content.decode()
    assert "would take it to $5.20, over the budget" in response.content.decode()
    assert uploads_and_creates(emulator) == (0, 0)


def test_a_create_from_an_uploaded_file_id_is_refused_too(budget, client):
    emulator = budget("monthly_usd = 5\nblock_at_limit = true\n")
    spent(5)
    response = client.post(URL, form_data(None, input_file_id="file-abc", endpoint="/v1/chat/completions"))
    assert response.status_code == 403
    assert uploads_and_creates(emulator) == (0, 0)
    assert AuditEntry.objects.get().outcome == "refused"


def test_a_budget_that_does_not_block_lets_the_batch_be_created(budget, client):
    emulator = budget("monthly_usd = 5\n")
    spent(6)
    response = client.post(URL, form_data(jsonl_bytes(2, model="gpt-test")))
    assert response.status_code == 302
    assert uploads_and_creates(emulator) == (1, 1)


def test_a_create_within_the_budget_goes_through(budget, client):
    emulator = budget("monthly_usd = 500\nblock_at_limit = true\n")
    spent(6)
    assert client.post(URL, form_data(jsonl_bytes(2, model="gpt-test"))).status_code == 302
    assert uploads_and_creates(emulator) == (1, 1)


def test_running_batches_are_not_touched_when_the_budget_is_reached(budget, client, running_batch):
    emulator = budget("monthly_usd = 5\nblock_at_limit = true\n")
    spent(6)
    client.post(URL, form_data(jsonl_bytes(1, model="gpt-test")))
    assert client.get(f"/projects/default/batches/{running_batch}/").status_code == 200
    counts = emulator.state.stats()["counts"]
    assert counts.get("POST /v1/batches/{id}/cancel", 0) == 0 and counts.get("GET /v1/batches/{id}", 0) == 1
    assert emulator.state.get_batch(running_batch)["status"] not in ("cancelling", "cancelled")


def test_the_create_page_shows_the_reached_budget_before_anything_is_chosen(budget, client):
    budget("monthly_usd = 5\nblock_at_limit = true\n")
    spent(6)
    html = client.get(URL).content.decode()
    assert "New batches and jobs are refused: the budget is reached." in html
