"""Signing in directly against an OpenID Connect provider (``DASHBOARD_AUTH=oidc``).

mozilla-django-oidc does the code flow and token checks; this backend only decides who the person is
(their email, so the audit trail names them like the proxy mode does) and which groups they are in
(the ``OIDC_GROUPS_CLAIM`` claim, mirrored into Django groups at every login so a role change at the
provider takes effect on the next sign-in).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

logger = logging.getLogger(__name__)


def claim_groups(claims: dict) -> list[str]:
    """The groups claim as a list of names; providers send a list or a comma-separated string."""
    raw = claims.get(settings.OIDC_GROUPS_CLAIM)
    if isinstance(raw, str):
        raw = raw.split(",")
    if not isinstance(raw, list):
        return []
    return sorted({str(group).strip() for group in raw if str(group).strip()})


class DashboardOIDCBackend(OIDCAuthenticationBackend):
    def get_username(self, claims: dict) -> str:
        return claims["email"][:150]

    def filter_users_by_claims(self, claims: dict):
        # The username is the email (see get_username), so this also finds users first seen in proxy mode.
        email = claims.get("email")
        if not email:
            return self.UserModel.objects.none()
        return self.UserModel.objects.filter(username__iexact=email[:150])

    def verify_claims(self, claims: dict) -> bool:
        # An email is required: it is the name in the audit trail.
        return bool(claims.get("email"))

    def create_user(self, claims: dict):
        user = self.UserModel.objects.create_user(self.get_username(claims), email=claims["email"])
        self._sync_groups(user, claims)
        return user

    def update_user(self, user, claims: dict):
        self._sync_groups(user, claims)
        return user

    @transaction.atomic
    def _sync_groups(self, user, claims: dict) -> None:
        names = claim_groups(claims)
        groups = [Group.objects.get_or_create(name=name[:150])[0] for name in names]
        user.groups.set(groups)
        logger.info("OIDC sign-in %s groups=%s", user.get_username(), ",".join(names) or "-")
