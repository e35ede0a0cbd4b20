"""A per-project lease in the database, so exactly one instance syncs a project at a time.

Any number of machines may run ``manage.py sync_batches``. Before a pass, an instance claims the
project's lease with one conditional ``UPDATE … WHERE`` (the lease is free, already its own, or
expired) and syncs only when exactly one row changed, the pattern of healthchecks' ``sendalerts``.
The holder renews the lease with every page it commits (a renewal that changes no row means the
lease was lost: the page's transaction rolls back and the pass stops), keeps it between passes and
releases it when it stops. A holder that crashes stops renewing, so its lease expires after
:func:`lease_ttl` seconds and another instance takes over.

Plain SQL on ``SyncState``: works the same on SQLite and PostgreSQL, with no Redis needed.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from ..conf import conf
from ..models import SyncState

MIN_TTL_SECONDS = 120.0


class LeaseLost(Exception):
    """Another instance holds the project's lease now (ours expired during a long stall)."""


def new_owner() -> str:
    """A name for this instance: host and pid for the operator, a random part for uniqueness."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def lease_ttl() -> float:
    """Two sync intervals, at least two minutes: long enough that a slow page does not lose it."""
    return max(conf().stale_after_seconds, MIN_TTL_SECONDS)


def sync_state(project: str) -> SyncState:
    """The project's SyncState row, created on first use (concurrent creators end with one row)."""
    return SyncState.objects.get_or_create(project=project)[0]


def claim(project: str, owner: str, *, ttl: float | None = None, now=None) -> bool:
    """Take (or keep) the lease of ``project``; True only if this call's UPDATE changed its row."""
    now = now or timezone.now()
    sync_state(project)
    free = Q(lease_owner="") | Q(lease_owner=owner) | Q(lease_expires__isnull=True) | Q(lease_expires__lt=now)
    changed = (
        SyncState.objects.filter(project=project)
        .filter(free)
        .update(lease_owner=owner, lease_expires=now + timedelta(seconds=ttl or lease_ttl()))
    )
    return changed == 1


def renew(project: str, owner: str, *, ttl: float | None = None, now=None, **fields) -> None:
    """Extend our lease (and write ``fields`` with it, e.g. the backfill cursor, in the same UPDATE).
    Raises :class:`LeaseLost` when the lease is no longer ours, so the caller's transaction rolls back.
    A lease that expired but that nobody took is still ours: the owner check is what matters."""
    now = now or timezone.now()
    changed = SyncState.objects.filter(project=project, lease_owner=owner).update(
        lease_expires=now + timedelta(seconds=ttl or lease_ttl()), **fields
    )
    if changed != 1:
        raise LeaseLost(f"the sync lease of project {project} is held by another instance now")


def release(project: str, owner: str) -> None:
    """Give the lease up (clean shutdown), so another instance need not wait for it to expire."""
    SyncState.objects.filter(project=project, lease_owner=owner).update(lease_owner="", lease_expires=None)
