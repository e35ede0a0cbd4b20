"""Who is acting, and whether they may act.

The identity comes from the SSO layer in front of the dashboard (``DASHBOARD_AUTH=proxy``): a header
set by an authenticating proxy, believed only when the request's direct peer is a trusted proxy.
``DASHBOARD_AUTH=none`` is the local demo: nobody signs in and everybody may act.
"""

from __future__ import annotations

import ipaddress
import logging

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from django.shortcuts import render

logger = logging.getLogger(__name__)


def _header_key(name: str) -> str:
    return "HTTP_" + name.upper().replace("-", "_")


def peer_is_trusted(request: HttpRequest) -> bool:
    try:
        peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(peer in network for network in settings.DASHBOARD_TRUSTED_PROXIES)


def request_groups(request: HttpRequest) -> set[str]:
    if settings.DASHBOARD_AUTH != "proxy" or not peer_is_trusted(request):
        return set()
    raw = request.META.get(_header_key(settings.DASHBOARD_GROUPS_HEADER), "")
    return {group.strip() for group in raw.split(",") if group.strip()}


def user_can_operate(request: HttpRequest) -> bool:
    """May this request create and cancel batches?"""
    if settings.DASHBOARD_AUTH == "none":
        return True
    if not request.user.is_authenticated:
        return False
    operator_groups = set(settings.DASHBOARD_OPERATOR_GROUPS)
    if not operator_groups:
        return True
    return bool(request_groups(request) & operator_groups)


def actor_name(request: HttpRequest) -> str:
    if request.user.is_authenticated:
        return request.user.get_username()
    return "anonymous (no sign-in)"


class DashboardIdentityMiddleware:
    """Signs the request in from the proxy's identity header, or refuses it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if settings.DASHBOARD_AUTH == "proxy" and not request.path.endswith("/healthz"):
            refusal = self._authenticate_from_proxy(request)
            if refusal is not None:
                return refusal
        return self.get_response(request)

    def _authenticate_from_proxy(self, request: HttpRequest):
        identity = request.META.get(_header_key(settings.DASHBOARD_AUTH_HEADER), "").strip()
        if not identity:
            return render(request, "401.html", {"reason": "missing"}, status=401)
        if not peer_is_trusted(request):
            logger.warning("identity header from untrusted peer %s ignored", request.META.get("REMOTE_ADDR"))
            return render(request, "401.html", {"reason": "untrusted"}, status=403)
        if request.user.is_authenticated and request.user.get_username() == identity:
            return None
        user = auth.authenticate(request, remote_user=identity)
        if user is None:
            request.user = AnonymousUser()
            return render(request, "401.html", {"reason": "missing"}, status=401)
        request.user = user
        auth.login(request, user)
        return None
