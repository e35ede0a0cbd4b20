"""Who "me" is for "Notify me", and whether they watch a batch.

Under proxy or OIDC sign-in the identity is the person (their email address is their identity, or
the account's email). Without sign-in (``DASHBOARD_AUTH=none``, the local demo) nobody is known, so
the form asks for an address and this browser session remembers it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import reverse

from ..models import BatchRecord, Watch
from ..upstream.types import TERMINAL_STATUSES

SESSION_EMAIL = "notify_email"


@dataclass(frozen=True)
class WatchState:
    url: str
    person: str
    email: str
    needs_email: bool
    watching: bool
    finished: bool
    error: str | None = None


def person_and_email(request: HttpRequest) -> tuple[str, str]:
    """(identity, email) of the person asking; empty strings when nobody is signed in."""
    user = request.user
    if user.is_authenticated:
        username = user.get_username()
        email = (getattr(user, "email", "") or "").strip() or (username if "@" in username else "")
        return username, email
    remembered = request.session.get(SESSION_EMAIL, "") if hasattr(request, "session") else ""
    return remembered, remembered


def watch_state(request: HttpRequest, project: str, batch_id: str, *, finished: bool | None = None, error: str | None = None) -> WatchState:
    person, email = person_and_email(request)
    watch = Watch.objects.filter(project=project, batch_id=batch_id, person=person).first() if person else None
    if finished is None:
        status = BatchRecord.objects.filter(project=project, batch_id=batch_id).values_list("status", flat=True).first()
        finished = status in TERMINAL_STATUSES
    return WatchState(
        url=reverse("batches:batch_watch", args=[project, batch_id]),
        person=person,
        email=watch.email if watch else email,
        needs_email=not request.user.is_authenticated or not email,
        watching=watch is not None,
        finished=finished,
        error=error,
    )
