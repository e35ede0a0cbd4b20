"""OpenAI's batch webhooks in: verification first, then a deduplicated, queued refresh.

OpenAI signs deliveries the Standard Webhooks way (NOTES.md §6.4): headers ``webhook-id``,
``webhook-timestamp`` and ``webhook-signature`` (one or more space-separated ``v1,<base64>``), an
HMAC-SHA256 over ``id.timestamp.body`` keyed with the project's ``whsec_`` secret, timestamps within
±300 s. The maintained ``standardwebhooks`` package checks all of that (constant-time compare, any of
several signatures) before anything else happens: nothing is parsed, stored or queued for a request
that does not verify.

A delivery is at-least-once and unordered, and the event only says "go and look": a verified
``batch.*`` event enqueues :func:`batches.index.refresh.refresh_batch` on the urgent queue, which retrieves the
batch, updates the index and records the ``webhook-id`` (a unique key) in the same transaction; a
delivery of a recorded id is a replay and does nothing. The request never calls the upstream, so it
answers at once.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.tasks import TaskResultStatus
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook, WebhookVerificationError

from .conf import conf
from .models import WebhookDelivery
from .projects import SLUG_PATTERN, Project, get_project
from .index.refresh import refresh_batch
from .upstream import ID_PATTERN

logger = logging.getLogger(__name__)

SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
MAX_WEBHOOK_ID_LENGTH = 200


class WebhookRejected(Exception):
    """A delivery that is answered 400. The message is safe to log: it never quotes a secret or a
    signature."""


@dataclass(frozen=True)
class WebhookEvent:
    project: Project
    webhook_id: str
    type: str
    batch_id: str | None
    payload: dict[str, Any]

    @property
    def is_batch_event(self) -> bool:
        return self.type.startswith("batch.")


def webhook_verify(slug: str, body: bytes, headers) -> WebhookEvent:
    """The verified event of a delivery to ``/webhooks/openai/<slug>/``, or :class:`WebhookRejected`."""
    project = get_project(slug) if SLUG_PATTERN.fullmatch(slug) else None
    if project is None:
        raise WebhookRejected("unknown project")
    if not project.webhook_secret:
        raise WebhookRejected("the project has no webhook secret configured (webhook_secret_env)")
    try:
        verifier = Webhook(project.webhook_secret)
    except (binascii.Error, ValueError, TypeError, RuntimeError, EmptyWebhookSecretError):
        raise WebhookRejected("the project's webhook secret is not a valid whsec_ key") from None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRejected("the body is not UTF-8") from None
    signed = {name: headers.get(name, "") for name in SIGNATURE_HEADERS}
    try:
        verifier.verify(text, signed, json_parse=False)
    except WebhookVerificationError as err:
        raise WebhookRejected(f"signature refused: {err}") from None
    except (ValueError, binascii.Error, TypeError):
        # A signature part without "v1,", bad base64, …: the package raises these, not its own class.
        raise WebhookRejected("signature refused: malformed webhook-signature header") from None
    # Verified. From here on the sender is OpenAI (or whoever holds the secret); still check the shape.
    webhook_id = signed["webhook-id"]
    if len(webhook_id) > MAX_WEBHOOK_ID_LENGTH:
        raise WebhookRejected("webhook-id is too long")
    try:
        payload = json.loads(text)
    except ValueError:
        raise WebhookRejected("the payload is not JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str) or not payload["type"]:
        raise WebhookRejected("the payload is not an event (no type)")
    event_type = payload["type"][:100]
    batch_id = None
    if event_type.startswith("batch."):
        data = payload.get("data")
        batch_id = data.get("id") if isinstance(data, dict) else None
        if not isinstance(batch_id, str) or not ID_PATTERN.fullmatch(batch_id):
            raise WebhookRejected(f"a {event_type} event without a valid data.id")
    return WebhookEvent(project=project, webhook_id=webhook_id, type=event_type, batch_id=batch_id, payload=payload)


def webhook_handle(event: WebhookEvent) -> str:
    """Queue the batch's refresh unless this delivery was handled already. Returns what happened:
    ``"queued"``, ``"replay"`` or ``"ignored"`` (an event type that is not about a batch).

    A ``webhook-id`` counts as handled once its refresh has committed (the refresh records it, in the
    transaction that writes the index). A delivery that arrives again before that finds the refresh the
    first one queued (its task id is kept in the shared cache, :func:`_queued_refresh`): while that task
    is still waiting or running (a task whose worker died is put back by the worker's orphan check) it
    is not queued twice; once it has failed, or when the cache no longer knows it, it is queued again,
    and the refresh, which only reads the batch and rewrites its row, is safe to run twice."""
    slug = event.project.slug
    if WebhookDelivery.objects.filter(project=slug, webhook_id=event.webhook_id).exists():
        logger.info("webhook %s for project %s: replay of %r, already handled", event.type, slug, event.webhook_id)
        return "replay"
    if not event.is_batch_event:
        try:
            with transaction.atomic():
                WebhookDelivery.objects.create(project=slug, webhook_id=event.webhook_id, event_type=event.type)
        except IntegrityError:
            return "replay"
        logger.info("webhook %s for project %s: not a batch event, ignored", event.type, slug)
        return "ignored"
    key = _queued_key(slug, event.webhook_id)
    if _queued_refresh(key):
        logger.info("webhook %s for project %s: %r again, its refresh is still queued", event.type, slug, event.webhook_id)
        return "queued"
    result = refresh_batch.enqueue(slug, event.batch_id, event.webhook_id, event.type)
    cache.set(key, str(result.id), timeout=conf().task_stuck_seconds)
    logger.info("webhook %s for project %s: refresh of %s queued", event.type, slug, event.batch_id)
    return "queued"


def _queued_key(project: str, webhook_id: str) -> str:
    return f"webhook-refresh:{project}:{hashlib.sha256(webhook_id.encode()).hexdigest()[:32]}"


def _queued_refresh(key: str) -> bool:
    """Is the refresh an earlier delivery of this event queued still waiting or running?"""
    task_id = cache.get(key)
    if task_id is None:
        return False
    try:
        status = refresh_batch.get_result(task_id).status
    except Exception:  # noqa: BLE001 - gone from the backend (pruned) or unreadable: queue it again
        return False
    return status in (TaskResultStatus.READY, TaskResultStatus.RUNNING)
