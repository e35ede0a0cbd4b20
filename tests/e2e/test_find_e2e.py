"""Find in a real browser: click a status chip → the URL changes → a reload shows the same rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

INDEX_SCRIPT = """
import json, sys
import django
django.setup()
from batches.index.store import upsert_batches
from batches.models import SyncState
from batches.upstream import Batch
from django.utils import timezone
batches = json.load(sys.stdin)
upsert_batches("default", [Batch.from_api(b) for b in batches])
SyncState.objects.update_or_create(project="default", defaults={"last_success": timezone.now(), "backfill_done": True})
"""


def index_upstream(server) -> list[dict]:
    """Index the emulator's batches into the dashboard's database, as one sync pass would."""
    batches = server.upstream("/v1/batches?limit=100")["data"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DASHBOARD_", "DATABASE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="dashboard.settings", DJANGO_DEBUG="1", DJANGO_SECRET_KEY="e2e-find-index",
        DATABASE_URL=f"sqlite:///{server.logs['gunicorn'].parent / 'db.sqlite3'}",
    )
    subprocess.run([sys.executable, "-c", INDEX_SCRIPT], input=json.dumps(batches), text=True, cwd=REPO, env=env,
                   check=True, capture_output=True, timeout=60)
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
