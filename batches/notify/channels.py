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

from ..conf import conf
from . import egress

logger = logging.getLogger(__name__)

USER_AGENT = "batch-dashboard-notify/1"


@dataclass(frozen=True)
class Message:
    subject: str
    body: str
    link: str


class ChannelError(Exception):
    """A send failed; the message is a sentence fit for the history page (no secrets in it, and never
    what a receiver answered: that goes to the log only)."""

    #: True when trying again cannot help (the target is refused): the row fails at once.
    permanent = False


class ChannelRefused(ChannelError):
    permanent = True


def mask_url(url: str) -> str:
    """An incoming-webhook URL is a credential (anyone holding it may post): show its host and the
    last four characters only."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "…"
    if not host:
        return "…"
    # hostname and port only: never the user:password@ part of a URL saved before such URLs were refused.
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}/…{url[-4:]}"


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
        where = mask_url(self.url)
        try:
            status, reply = egress.post_json(self.url, {"text": text}, headers={"User-Agent": USER_AGENT})
        except egress.EgressRefused as err:
            raise ChannelRefused(f"Not sent to {where}: {err}") from err
        except httpx.TimeoutException as err:
            raise ChannelError(
                f"The webhook at {where} did not answer within {conf().notify_send_seconds:g} s."
            ) from err
        except (httpx.HTTPError, OSError) as err:
            raise ChannelError(f"The webhook at {where} could not be reached ({type(err).__name__}).") from err
        if 200 <= status < 300:
            return
        # The reply may be anything the receiver chose to say (an internal page, a secret): the log
        # keeps it for whoever runs the dashboard; the history page, which every viewer sees, does not.
        logger.warning("notification webhook %s answered HTTP %s: %s", where, status, _text(reply))
        if 300 <= status < 400:
            raise ChannelError(f"The webhook at {where} answered with a redirect (HTTP {status}), which is not followed.")
        raise ChannelError(f"The webhook at {where} answered HTTP {status}; its reply is in the worker's log.")

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
