"""Where notifications go: one small class per channel behind one ``send(message)``.

This is the one place that talks to mail servers and chat webhooks. It is only ever called from the
task queue (``batches/notify/tasks.py``), never from a page or a webhook reply, so a slow or dead
receiver costs a worker's time, not a person's. Every failure is raised as :class:`ChannelError`
carrying a sentence for the history page.
"""

from __future__ import annotations

import logging
import smtplib
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.mail import EmailMessage

logger = logging.getLogger(__name__)

#: Seconds for a whole webhook POST (connect, send, answer). Slack answers in well under a second.
WEBHOOK_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
USER_AGENT = "batch-dashboard-notify/1"


@dataclass(frozen=True)
class Message:
    subject: str
    body: str
    link: str


class ChannelError(Exception):
    """A send failed; the message is a sentence fit for the history page (no secrets in it)."""


def mask_url(url: str) -> str:
    """An incoming-webhook URL is a credential (anyone holding it may post): show its host and the
    last four characters only."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…{url[-4:]}" if parts.netloc else "…"


class EmailChannel:
    """Email through Django's configured email backend (SMTP settings from the environment)."""

    def __init__(self, address: str) -> None:
        self.address = address

    def send(self, message: Message) -> None:
        email = EmailMessage(
            subject=message.subject,
            body=f"{message.body}\n\n{message.link}\n",
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[self.address],
        )
        try:
            sent = email.send()
        except smtplib.SMTPRecipientsRefused as err:
            raise ChannelError(f"The mail server refused the address {self.address}.") from err
        except smtplib.SMTPResponseException as err:
            raise ChannelError(f"The mail server answered {err.smtp_code}: {_text(err.smtp_error)}") from err
        except (smtplib.SMTPException, OSError, socket.timeout) as err:
            raise ChannelError(f"The mail server could not be reached or dropped the connection ({type(err).__name__}: {err}).") from err
        if not sent:
            raise ChannelError("The mail backend accepted nothing (0 messages sent).")

    def __str__(self) -> str:
        return f"email {self.address}"


class SlackChannel:
    """A Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat, Teams workflows):
    a JSON POST of ``{"text": ...}``; any 2xx is success."""

    def __init__(self, url: str) -> None:
        self.url = url

    def send(self, message: Message) -> None:
        # Slack's text format treats &, < and > as control characters (<!channel>, <url|label>):
        # escape them so upstream data (batch ids, project names) can never ping a channel.
        text = f"{_slack_escape(message.subject)}\n{_slack_escape(message.body)}\n{message.link}"
        try:
            response = httpx.post(
                self.url, json={"text": text}, timeout=WEBHOOK_TIMEOUT, headers={"User-Agent": USER_AGENT},
                follow_redirects=False,
            )
        except httpx.TimeoutException as err:
            raise ChannelError(f"The webhook at {mask_url(self.url)} did not answer in time.") from err
        except httpx.HTTPError as err:
            raise ChannelError(f"The webhook at {mask_url(self.url)} could not be reached ({type(err).__name__}).") from err
        if not response.is_success:
            raise ChannelError(
                f"The webhook at {mask_url(self.url)} answered HTTP {response.status_code}: {_text(response.text)}"
            )

    def __str__(self) -> str:
        return f"webhook {mask_url(self.url)}"


def channel_for(recipient: str) -> EmailChannel | SlackChannel:
    """The channel a ``Notification.recipient`` (``email:<address>`` / ``slack:<url>``) names."""
    kind, _, target = recipient.partition(":")
    if kind == "email":
        return EmailChannel(target)
    if kind == "slack":
        return SlackChannel(target)
    raise ChannelError(f"Unknown channel “{kind}”.")


def recipient_label(recipient: str) -> str:
    """A recipient as the history page shows it (webhook URLs masked)."""
    kind, _, target = recipient.partition(":")
    return target if kind == "email" else f"webhook {mask_url(target)}"


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _text(value, limit: int = 200) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    value = " ".join(str(value).split())
    return value[:limit] + ("…" if len(value) > limit else "")
