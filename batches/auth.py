"""Who is acting: the middleware that signs each request in, or refuses it.

Three modes, chosen by ``DASHBOARD_AUTH``:

``proxy`` (the production default)
    An authenticating reverse proxy (oauth2-proxy, Pomerium, Cloudflare Access, nginx ``auth_request``)
    signs people in and passes the identity in a header (``DASHBOARD_AUTH_HEADER``). The header is only
    believed when the request's direct peer (``REMOTE_ADDR``) is one of ``DASHBOARD_TRUSTED_PROXIES``:
    WSGI cannot tell a header the proxy set from one the client sent (``X-Forwarded-Email`` and
    ``X_Forwarded_Email`` both become ``HTTP_X_FORWARDED_EMAIL``), so the protection is the trusted peer
    plus a proxy that overwrites the header on every request.
``oidc``
    The dashboard logs people in itself against an OpenID Connect provider (mozilla-django-oidc, see
    ``batches/oidc.py``). Every page requires a session; groups come from a claim.
``none``
    The local demo: nobody signs in, everybody may act, and every page says so.

Who may see and do what is decided in ``access.py``. The middleware refuses any unsafe request from a
look-only user before a view runs (so no view can forget), and the views check again to decide what
to show.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from django.contrib import auth
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from .access import actor_name, header_key, may_operate, may_view, peer_is_trusted, user_can_operate, visible_projects
from .conf import conf
from .projects import get_project
from .views.errors import page_not_found

logger = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Django's User.username is at most 150 characters; a longer identity cannot be a real account here.
MAX_IDENTITY_LENGTH = 150
# Paths that answer without a signed-in identity (load balancers, monitoring, and the OIDC login
# round trip). /metrics guards itself with DASHBOARD_METRICS_ALLOWED (batches/views/ops.py).
OPEN_PATHS = ("/healthz", "/readyz", "/metrics")
# Signed by OpenAI, not by a person: the signature is the authentication (batches/webhook_inbox.py).
OPEN_PATH_PREFIXES = ("/webhooks/openai/",)
OIDC_PATH_PREFIX = "/oidc/"
# Views a look-only user may still POST to (signing out and watching a batch are not "acting").
READ_ONLY_POST_VIEWS = frozenset({"oidc_logout", "batch_watch"})


def refuse(request: HttpRequest, status: int, reason: str) -> HttpResponse:
    """A clear refusal page (or, for htmx, just the message) — never an upstream call."""
    template = "401.html" if status == 401 else "403.html"
    if getattr(request, "htmx", False) or request.headers.get("HX-Request") == "true":
        template += "#refusal"
    response = render(request, template, {"reason": reason}, status=status)
    response["Cache-Control"] = "no-store"
    return response


def _valid_identity(identity: str) -> bool:
    return 0 < len(identity) <= MAX_IDENTITY_LENGTH and identity.isprintable() and " " not in identity


class DashboardIdentityMiddleware:
    """Signs the request in (proxy header or OIDC session) or refuses it, and enforces roles on writes.

    A plain synchronous middleware (not a ``RemoteUserMiddleware`` subclass): Django adapts it, and
    there is no async path that could skip the checks.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if path in OPEN_PATHS or path.startswith(OPEN_PATH_PREFIXES):
            return self.get_response(request)
        if conf().auth == "proxy":
            refusal = self._sign_in_from_proxy(request)
            if refusal is not None:
                return refusal
        elif conf().auth == "oidc" and not path.startswith(OIDC_PATH_PREFIX):
            if not request.user.is_authenticated:
                return self._oidc_login_redirect(request)
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        """Any unsafe request from a look-only user is refused here, before the view can call upstream."""
        if request.method in SAFE_METHODS or request.path_info in OPEN_PATHS or request.path_info.startswith(OPEN_PATH_PREFIXES):
            return None
        match = request.resolver_match
        if match is not None and match.url_name in READ_ONLY_POST_VIEWS:
            return None
        slug = view_kwargs.get("project")
        if slug is not None:
            project = get_project(slug)
            if project is None or not may_view(request, project):
                # A project the person may not see answers exactly as one that does not exist.
                return page_not_found(request, None)
            allowed = may_operate(request, project)
        else:
            # A page over several projects (/search/'s bulk cancel) checks each batch's project itself;
            # here it is enough that the person may act in at least one of them.
            allowed = user_can_operate(request) or any(may_operate(request, p) for p in visible_projects(request))
        if not allowed:
            logger.info("refused %s %s from look-only user %s", request.method, request.path, actor_name(request))
            return refuse(request, 403, "read-only")
        return None

    def _sign_in_from_proxy(self, request: HttpRequest) -> HttpResponse | None:
        if not peer_is_trusted(request):
            logger.warning(
                "request from untrusted peer %s refused (not the sign-in proxy)", request.META.get("REMOTE_ADDR")
            )
            request.user = AnonymousUser()
            return refuse(request, 403, "untrusted")
        identity = request.META.get(header_key(conf().auth_header), "").strip()
        if not identity or not _valid_identity(identity):
            if request.user.is_authenticated:
                # The proxy stopped vouching for this session: end it rather than trust the cookie.
                auth.logout(request)
            request.user = AnonymousUser()
            return refuse(request, 401, "missing" if not identity else "invalid")
        if request.user.is_authenticated:
            if request.user.get_username() == identity:
                return None
            # Someone else now holds this browser session (shared machine, switched account): the old
            # person is logged out before the new one is signed in, so nothing of theirs carries over.
            auth.logout(request)
        user = auth.authenticate(request, remote_user=identity)
        if user is None:
            request.user = AnonymousUser()
            return refuse(request, 401, "invalid")
        auth.login(request, user)
        request.user = user
        return None

    def _oidc_login_redirect(self, request: HttpRequest) -> HttpResponse:
        login_url = reverse("oidc_authentication_init") + "?" + urlencode({"next": request.get_full_path()})
        if request.headers.get("HX-Request") == "true":
            # htmx would swap a redirect's target into the page; send the whole browser to the login.
            response = refuse(request, 401, "expired")
            response["HX-Redirect"] = login_url
            return response
        response = HttpResponse(status=302)
        response["Location"] = login_url
        response["Cache-Control"] = "no-store"
        return response
