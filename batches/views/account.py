"""Pages around signing in with OIDC (``DASHBOARD_AUTH=oidc``): the provider refused, or you signed out.

Both live under ``/oidc/`` so they answer without a session (see ``batches.auth.OIDC_PATH_PREFIX``);
otherwise a failed sign-in would redirect straight back to the provider, forever.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe


@require_safe
def oidc_login_failed(request: HttpRequest) -> HttpResponse:
    return render(request, "401.html", {"reason": "oidc-failed"}, status=401)


@require_safe
def oidc_signed_out(request: HttpRequest) -> HttpResponse:
    return render(request, "401.html", {"reason": "signed-out"}, status=200)
