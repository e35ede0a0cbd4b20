"""Who may see and do what: a person's groups, whether they may act, and their place in each project.

Roles: with ``DASHBOARD_OPERATOR_GROUPS`` set, only members of one of those groups may create and
cancel; everyone else signed in may look. A project of the projects file may narrow both: its
``viewer_groups`` say who sees it at all, its ``operator_groups`` who acts in it. Views under
``/projects/<slug>/`` take their project through :func:`project_view`, so a person never reaches a
project they do not belong to; the identity middleware (``auth.py``) refuses an unsafe request of a
look-only person before any view runs.
"""

from __future__ import annotations

import functools
import ipaddress

from django.http import Http404, HttpRequest

from .conf import conf
from .projects import Project, all_projects, get_project


def header_key(name: str) -> str:
    """The ``request.META`` key WSGI uses for an HTTP header name."""
    return "HTTP_" + name.upper().replace("-", "_")


def peer_is_trusted(request: HttpRequest) -> bool:
    try:
        peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(peer in network for network in conf().trusted_proxies)


def request_groups(request: HttpRequest) -> frozenset[str]:
    """The signed-in person's groups: from the proxy's header, or from the OIDC groups claim."""
    if conf().auth == "proxy":
        if not peer_is_trusted(request):
            return frozenset()
        raw = request.META.get(header_key(conf().groups_header), "")
        return frozenset(group.strip() for group in raw.split(",") if group.strip())
    if conf().auth == "oidc" and request.user.is_authenticated:
        return frozenset(request.user.groups.values_list("name", flat=True))
    return frozenset()


def user_can_operate(request: HttpRequest) -> bool:
    """May this request create and cancel batches?"""
    if conf().auth == "none":
        return True
    if not request.user.is_authenticated:
        return False
    operator_groups = conf().operator_groups
    if not operator_groups:
        return True
    return bool(request_groups(request) & operator_groups)


def actor_name(request: HttpRequest) -> str:
    """The name written to the audit trail."""
    if request.user.is_authenticated:
        return request.user.get_username()
    return "anonymous (no sign-in)"


def may_view(request: HttpRequest, project: Project) -> bool:
    """Does this person belong to the project? Empty viewer_groups: everyone signed in does."""
    if not project.viewer_groups or conf().auth == "none":
        return True
    return bool(request_groups(request) & project.viewer_groups)


def may_operate(request: HttpRequest, project: Project) -> bool:
    """May this person create and cancel in the project?"""
    if not may_view(request, project):
        return False
    if project.operator_groups is None or conf().auth == "none":
        return user_can_operate(request)
    if not request.user.is_authenticated:
        return False
    return bool(request_groups(request) & project.operator_groups)


def visible_projects(request: HttpRequest) -> list[Project]:
    return [project for project in all_projects() if may_view(request, project)]


def project_or_404(request: HttpRequest, slug: str) -> Project:
    """The project named in the URL, or a 404 that says nothing about whether it exists (a project
    the person may not see must not leak its name)."""
    project = get_project(slug)
    if project is None or not may_view(request, project):
        raise Http404("There is no such project, or you are not a member of it.")
    return project


def project_view(view):
    """For views under ``/projects/<slug>/``: the slug becomes the :class:`Project` (or a 404 with no
    upstream call when the person may not see it), also kept on ``request.project`` for templates."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, project: str, *args, **kwargs):
        request.project = project_or_404(request, project)
        return view(request, request.project, *args, **kwargs)

    return wrapper
