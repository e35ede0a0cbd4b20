"""Index rows for the Find tests, written the way the sync writes them (``upsert_batches``)."""

from __future__ import annotations

import datetime as dt
import itertools

from batches.index.store import upsert_batches
from batches.models import SyncState
from batches.upstream import Batch

_serial = itertools.count(1)
DAY = 86400
# 2025-03-10 00:00:00 UTC
T0 = int(dt.datetime(2025, 3, 10, tzinfo=dt.UTC).timestamp())


def batch_json(**fields) -> dict:
    n = next(_serial)
    data = {
        "id": fields.pop("id", f"batch_{n:06d}"),
        "object": "batch",
        "endpoint": "/v1/responses",
        "model": "gpt-4.1-2025-04-14",
        "input_file_id": f"file-In{n:06d}",
        "completion_window": "24h",
        "status": "completed",
        "created_at": T0 + n,
        "expires_at": T0 + n + DAY,
        "request_counts": {"total": 10, "completed": 10, "failed": 0},
        "metadata": {},
    }
    data.update(fields)
    return data


def index(project: str = "default", *batches: dict, now=None) -> list[dict]:
    upsert_batches(project, [Batch.from_api(b) for b in batches], now=now)
    return list(batches)


def make(project: str = "default", now=None, **fields) -> dict:
    return index(project, batch_json(**fields), now=now)[0]


def synced(project: str = "default", when=None) -> SyncState:
    from django.utils import timezone

    state, _ = SyncState.objects.update_or_create(
        project=project, defaults={"last_success": when or timezone.now(), "backfill_done": True}
    )
    return state
