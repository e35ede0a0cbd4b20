"""OpenAI's batch webhooks in: verification first, then a deduplicated, queued refresh.

OpenAI signs deliveries the Standard Webhooks way (NOTES.md §6.4): headers ``webhook-id``,
``webhook-timestamp`` and ``webhook-signature`` (one or more space-separated ``v1,<base64>``), an
HMAC-SHA256 over ``id.timestamp.body`` keyed with the project's ``whsec_`` secret, timestamps within
±300 s. The maintained ``standardwebhooks`` package checks all of that (constant-time compare, any of
several signatures) before anything else happens: nothing is parsed, stored or queued for a request
that does not verify.

A delivery is at-least-once and unordered, and the event only says "go and look": a verified
``batch.*`` event records its ``webhook-id`` (a unique key, so a replay does nothing a second time)
and enqueues :func:`batches.tasks.refresh_batch`, which retrieves the batch and updates the index.
The request never calls the upstream, so it answers at once.
"""

from __future__ import annotations

import binascii
import json
import logging
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook, WebhookVerificationError

from .models import WebhookDelivery
from .projects import SLUG_PATTERN, Project, get_project
from .tasks import refresh_batch
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
    """Record the delivery once and queue the batch's refresh. Returns what happened: ``"queued"``,
    ``"replay"`` or ``"ignored"`` (an event type that is not about a batch)."""
    slug = event.project.slug
    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(
                project=slug, webhook_id=event.webhook_id, event_type=event.type, batch_id=event.batch_id or ""
            )
    except IntegrityError:
        logger.info("webhook %s for project %s: replay of %r, already handled", event.type, slug, event.webhook_id)
        return "replay"
    if not event.is_batch_event:
        logger.info("webhook %s for project %s: not a batch event, ignored", event.type, slug)
        return "ignored"
    # Enqueued after the delivery row committed (the sequence above). Should enqueueing fail, the row
    # goes again, so OpenAI's retry of this delivery is not mistaken for a replay.
    try:
        refresh_batch.enqueue(slug, event.batch_id)
    except Exception:
        WebhookDelivery.objects.filter(pk=delivery.pk).delete()
        raise
    logger.info("webhook %s for project %s: refresh of %s queued", event.type, slug, event.batch_id)
    return "queued"
