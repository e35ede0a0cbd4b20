"""Find in a real browser: click a status chip → the URL changes → a reload shows the same rows."""

from __future__ import annotations

import pytest


def index_upstream(server) -> list[dict]:
    """Index the emulator's batches into the dashboard's database, as one sync pass would."""
    batches = server.upstream("/v1/batches?limit=100")["data"]
    server.index({"default": batches})
    return batches


def row_ids(page) -> list[str]:
    return page.eval_on_selector_all("#batch-table tbody tr[id^='row-']", "rows => rows.map(r => r.id.slice(4))")


@pytest.mark.django_db(transaction=True)
def test_clicking_a_status_chip_filters_pushes_the_url_and_a_reload_shows_the_same_rows(dashboard_server, guarded_page):
    batches = index_upstream(dashboard_server)
    status = next(s for s in ("failed", "completed", "expired") if any(b["status"] == s for b in batches))
    expected = sorted((b for b in batches if b["status"] == status), key=lambda b: (b["created_at"], b["id"]), reverse=True)
    page = guarded_page
    page.goto(f"{dashboard_server.url}/projects/default/batches/")
    chip = page.locator(f".find-chips a[href$='?status={status}']")
    chip.click()
    page.wait_for_url(f"**/projects/default/batches/?status={status}")
    page.wait_for_selector("#batch-table.find-section")
    shown = row_ids(page)
    assert shown == [b["id"] for b in expected][:20]
    assert page.locator(".find-chip[aria-current='true']").inner_text().startswith(status)
    # The form was swapped out of band and reflects the chip.
    assert page.locator(f"#filter-form input[name='status'][value='{status}']").is_checked()
    page.reload()
    assert row_ids(page) == shown
    assert page.locator(".find-fresh").inner_text().startswith("Synced")
