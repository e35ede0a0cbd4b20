"""Where a webhook notification may be sent, checked when the rule is saved and again at each send.

An operator types a webhook URL; the worker later POSTs to it from inside the network. Without checks
that is a way to make the dashboard call internal services (``127.0.0.1``, ``169.254.169.254``, a
database port, …) on someone's behalf (issue #23 item 1). So a URL must:

* be ``https://`` (``http://`` only for a host named in ``DASHBOARD_NOTIFY_INTERNAL_HOSTS``);
* carry no user name or password;
* name a host in ``DASHBOARD_NOTIFY_ALLOWED_HOSTS`` when that list is set (strict mode);
* resolve only to public addresses: loopback, link-local, private, shared, multicast, reserved and
  unspecified ones are refused (IPv4 inside IPv6 is unwrapped first), unless the operator named the
  host in ``DASHBOARD_NOTIFY_INTERNAL_HOSTS``.

At send time the name is resolved once, here, and the connection goes to an address that passed the
check (with the certificate still checked against the name), so a DNS answer that changes between the
check and the connection cannot lead elsewhere. Redirects are not followed, proxies from the
environment are not used, and the whole send (resolving included) has ``DASHBOARD_NOTIFY_SEND_SECONDS``.
URLs are taken apart with :func:`urllib.parse.urlsplit` and addresses judged with :mod:`ipaddress`.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
from ..conf import conf

#: The most of a receiver's reply that is read (for the log); the rest is not waited for.
REPLY_LIMIT = 64 * 1024


class EgressRefused(Exception):
    """This URL may not be sent to; the message is a sentence for the form and the history page."""


def _matches(host: str, entries: list[str]) -> bool:
    return any(host == entry or (entry.startswith(".") and host.endswith(entry)) for entry in entries)


def is_internal(host: str) -> bool:
    return _matches(host, list(conf().notify_internal_hosts))


def address_problem(address: str) -> str | None:
    """Why a notification may not go to ``address`` (a word for the sentence), or None."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    elif ip.version == 6 and (ip.sixtofour is not None or ip.teredo is not None):
        ip = ip.sixtofour or ip.teredo[1]
    for word, bad in (
        ("unspecified", ip.is_unspecified), ("loopback", ip.is_loopback), ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast), ("reserved", ip.is_reserved), ("private", ip.is_private),
    ):
        if bad:
            return word
    if not ip.is_global:
        return "non-public"
    return None


def check_url(url: str) -> tuple[str, int]:
    """The host and port of ``url`` after every check that needs no DNS; :class:`EgressRefused` else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise EgressRefused("That is not a valid URL (its host or port cannot be read).") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise EgressRefused("A webhook URL starts with https://.")
    if parts.username is not None or parts.password is not None:
        raise EgressRefused("A webhook URL may not carry a user name or password (user:pass@…); use the token the service gives in its path.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise EgressRefused("A webhook URL names a host, like https://hooks.slack.com/services/….")
    internal = is_internal(host)
    if scheme == "http" and not internal:
        raise EgressRefused(f"Only https:// webhook URLs are allowed; {host} is not one of the internal hosts that may use http:// (DASHBOARD_NOTIFY_INTERNAL_HOSTS).")
    allowed = list(conf().notify_allowed_hosts)
    if allowed and not internal and not _matches(host, allowed):
        raise EgressRefused(f"Notifications may only be sent to {', '.join(allowed)} (DASHBOARD_NOTIFY_ALLOWED_HOSTS); {host} is not one of them.")
    if not internal:
        try:
            problem = address_problem(host)
        except ValueError:
            problem = None  # a name, judged once resolved
        if problem:
            raise EgressRefused(f"{host} is a {problem} address; notifications only go to public hosts.")
    return host, port or (443 if scheme == "https" else 80)


def resolve_public(host: str, port: int, deadline: float) -> list[str]:
    """Every address ``host`` resolves to, all public, within the deadline; :class:`EgressRefused` if any
    is not (a name that also points inside is refused whole), :class:`OSError` if it does not resolve."""
    answer: dict[str, Any] = {}

    def lookup() -> None:
        try:
            answer["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as err:
            answer["error"] = err

    # getaddrinfo has no timeout of its own: wait for it only as long as the send may take.
    thread = threading.Thread(target=lookup, name="notify-resolve", daemon=True)
    thread.start()
    thread.join(max(deadline - time.monotonic(), 0.0))
    if thread.is_alive():
        raise httpcore.ConnectTimeout(f"resolving {host} took too long")
    if "error" in answer:
        raise answer["error"]
    addresses = list(dict.fromkeys(info[4][0] for info in answer["infos"]))
    for address in addresses:
        problem = address_problem(address)
        if problem:
            raise EgressRefused(f"{host} resolves to {address}, a {problem} address; notifications only go to public hosts.")
    return addresses


def check_url_now(url: str) -> None:
    """The save-time check: :func:`check_url`, and the name's addresses when it resolves now (a name
    that does not resolve yet is checked again at each send)."""
    host, port = check_url(url)
    if is_internal(host):
        return
    try:
        resolve_public(host, port, time.monotonic() + conf().notify_send_seconds)
    except (OSError, httpcore.ConnectTimeout):
        return


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write gets only what is left of the send's time."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: float) -> None:
        self.stream, self.deadline = stream, deadline

    def _left(self, timeout: float | None, error: type[Exception]) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise error("the send's time is up")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.stream.read(max_bytes, self._left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.stream.write(buffer, self._left(timeout, httpcore.WriteTimeout))

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.NetworkStream:
        stream = self.stream.start_tls(ssl_context, server_hostname, self._left(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(stream, self.deadline)

    def close(self) -> None:
        self.stream.close()

    def get_extra_info(self, info: str) -> Any:
        return self.stream.get_extra_info(info)


class _CheckedBackend(httpcore.NetworkBackend):
    """Connects only to addresses that passed :func:`address_problem` (internal hosts: as resolved)."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.plain = httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None) -> httpcore.NetworkStream:
        addresses = [host] if is_internal(host) else resolve_public(host, port, self.deadline)
        error: Exception = httpcore.ConnectError(f"{host} has no address")
        for address in addresses:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise httpcore.ConnectTimeout("the send's time is up")
            try:
                stream = self.plain.connect_tcp(address, port, min(timeout or left, left), local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as err:
                error = err
                continue
            return _DeadlineStream(stream, self.deadline)
        raise error

    def connect_unix_socket(self, *args, **kwargs):  # pragma: no cover - never asked for
        raise httpcore.ConnectError("unix sockets are not a notification target")

    def sleep(self, seconds: float) -> None:  # pragma: no cover - retries are off
        time.sleep(seconds)


class _CheckedTransport(httpx.HTTPTransport):
    def __init__(self, deadline: float) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False), max_connections=1,
            max_keepalive_connections=0, network_backend=_CheckedBackend(deadline),
        )


def post_json(url: str, payload: Any, headers: dict[str, str]) -> tuple[int, bytes]:
    """POST ``payload`` as JSON to a checked ``url`` within the send's time; returns the status and at
    most :data:`REPLY_LIMIT` bytes of the reply. Raises :class:`EgressRefused` or an ``httpx`` error."""
    check_url(url)
    seconds = conf().notify_send_seconds
    deadline = time.monotonic() + seconds
    with httpx.Client(transport=_CheckedTransport(deadline), trust_env=False, follow_redirects=False,
                      timeout=seconds) as client:
        with client.stream("POST", url, json=payload, headers=headers) as response:
            reply = b""
            for chunk in response.iter_bytes():
                reply += chunk
                if len(reply) >= REPLY_LIMIT:
                    break
            return response.status_code, reply[:REPLY_LIMIT]
