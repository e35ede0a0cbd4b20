"""``POST /webhooks/openai/<project>/``: OpenAI's batch events, signed, no SSO identity, no CSRF token.

The signature is the authentication (batches/webhook_inbox.py). Every refusal is a bare 400 with one log
line; a verified delivery answers 200 at once (the refresh runs as a task).
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ..metrics import WEBHOOK_DELIVERIES
from ..projects import get_project
from ..webhook_inbox import WebhookRejected, webhook_handle, webhook_verify

logger = logging.getLogger("batches.webhook_inbox")


@csrf_exempt
@never_cache
@require_POST
def openai_webhook(request: HttpRequest, project: str) -> HttpResponse:
    try:
        event = webhook_verify(project, request.body, request.headers)
    except WebhookRejected as err:
        logger.warning("webhook refused for project %r: %s", project[:40], err)
        # Unknown slugs are counted under one label, so a prober cannot grow the metric's series.
        known = get_project(project) is not None
        WEBHOOK_DELIVERIES.labels(project=project if known else "(unknown)", outcome="refused").inc()
        # The reason stays in the log: the answer must not tell a prober which project slugs exist.
        return HttpResponse("Webhook refused.\n", status=400, content_type="text/plain")
    outcome = webhook_handle(event)
    WEBHOOK_DELIVERIES.labels(project=project, outcome=outcome).inc()
    return HttpResponse(f"{outcome}\n", status=200, content_type="text/plain")
