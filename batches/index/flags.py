"""Trouble flags and ETAs over the index: the request-count samples of unfinished batches (one query
per project, never one per row), and the ``flag=`` filter of the filtered views.

The reckoning itself (rate, ETA, at risk, stalled, failing) is ``oversight/eta.py``, which reads nothing;
this module reads the samples and rows it needs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.db.models import F, Q
from django.db.models.lookups import GreaterThan
from django.utils import timezone

from ..models import BatchRecord, BatchSample
from ..oversight.eta import FAILING_RATIO, Oversight, compute
from ..upstream import Batch
from ..vocabulary import FLAGS, PROGRESSING_STATUSES, TERMINAL_STATUSES
from .records import batches_from_records

#: How far back the flag filter reads samples: a stall longer than this still shows (the run of equal
#: counts simply starts at the horizon), and it bounds the rows read per unfinished batch.
SAMPLE_HORIZON = 3 * 3600


def samples_by_batch(project: str, batch_ids: Iterable[str], now: float | None = None) -> dict[str, list]:
    """Recent samples (within :data:`SAMPLE_HORIZON`) of ``batch_ids``, in one query."""
    ids = list(batch_ids)
    if not ids:
        return {}
    now_dt = datetime.fromtimestamp(now, tz=dt_timezone.utc) if now is not None else timezone.now()
    grouped: dict[str, list] = defaultdict(list)
    rows = BatchSample.objects.filter(
        project=project, batch_id__in=ids, taken_at__gte=now_dt - timedelta(seconds=SAMPLE_HORIZON)
    ).order_by("batch_id", "taken_at")
    for sample in rows:
        grouped[sample.batch_id].append(sample)
    return grouped


def batch_oversight(project: str, batch: Batch, now: float | None = None) -> Oversight:
    """ETA and flags of one upstream ``Batch`` just read; reads its samples only when it is unfinished."""
    if batch.status in TERMINAL_STATUSES:
        return compute(batch, [])
    samples = samples_by_batch(project, [batch.id], now)
    fresh = now if now is not None else timezone.now().timestamp()
    return compute(batch, samples.get(batch.id, []), observed_at=fresh)


def oversight_for(project: str, records: Iterable[BatchRecord], now: float | None = None) -> dict[str, Oversight]:
    """``{batch_id: Oversight}`` for many index rows of one project, with one sample query."""
    records = list(records)
    unfinished = [record.batch_id for record in records if record.status not in TERMINAL_STATUSES]
    samples = samples_by_batch(project, unfinished, now)
    batches = batches_from_records(records)
    return {
        record.batch_id: compute(
            batches[record.pk], samples.get(record.batch_id, []),
            observed_at=record.last_synced.timestamp() if record.last_synced else None,
        )
        for record in records
    }


def failing_q() -> Q:
    """Batches where more than 10 % of finished requests failed, in SQL: failed × 10 > finished."""
    scale = round(1 / FAILING_RATIO)
    return Q(GreaterThan(F("failed_requests") * scale, F("completed_requests") + F("failed_requests")))


def flagged_ids(project: str, flag: str, now: float | None = None) -> set[str]:
    """Ids of ``project``'s batches that carry ``flag`` (``at-risk``, ``stalled`` or ``failing``).

    at-risk and stalled are computed in Python over the project's unfinished batches only (they are
    few: a batch lives at most its 24 h window), with one query for their recent samples."""
    if flag == "failing":
        return set(BatchRecord.objects.filter(failing_q(), project=project).values_list("batch_id", flat=True))
    if flag not in FLAGS:
        raise ValueError(f"unknown flag {flag!r}")
    records = BatchRecord.objects.filter(project=project, status__in=PROGRESSING_STATUSES)
    return {batch_id for batch_id, info in oversight_for(project, records, now).items() if flag in info.flag_slugs}


def flag_q(flag: str, projects: Iterable[str], now: float | None = None) -> Q:
    """A ``Q`` for ``BatchRecord`` querysets: the batches of ``projects`` that carry ``flag``.
    Unknown flags raise ValueError (the caller turns that into a message)."""
    if flag == "failing":
        return failing_q() & Q(project__in=list(projects))
    query = Q(pk__in=[])
    for project in projects:
        ids = flagged_ids(project, flag, now)
        if ids:
            query |= Q(project=project, batch_id__in=ids)
    return query
