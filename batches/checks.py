"""System checks for the sign-in configuration (``manage.py check``, and ``check --deploy``)."""

from __future__ import annotations

import ipaddress

from django.core.checks import Error, Tags, Warning, register

from .conf import conf
from .projects import ProjectsConfigError, load_projects

EVERYONE = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))


@register(Tags.security)
def check_identity_header(app_configs, **kwargs):
    problems = []
    if conf().auth == "proxy":
        for name, header in (("DASHBOARD_AUTH_HEADER", conf().auth_header), ("DASHBOARD_GROUPS_HEADER", conf().groups_header)):
            if "_" in header or not header.strip():
                problems.append(
                    Error(
                        f"{name}={header!r} is not a header name the dashboard can trust.",
                        hint="Use dashes (X-Forwarded-Email). Servers and proxies drop or mangle underscores, "
                        "and WSGI cannot tell X_Forwarded_Email from X-Forwarded-Email.",
                        id="batches.E001",
                    )
                )
    return problems


@register(Tags.security, deploy=True)
def check_deploy_sign_in(app_configs, **kwargs):
    problems = []
    if conf().auth == "none":
        problems.append(
            Warning(
                "DASHBOARD_AUTH=none: nobody signs in, anyone who reaches the dashboard may create and "
                "cancel batches, and the audit trail cannot say who did.",
                hint="Put the dashboard behind an authenticating proxy (DASHBOARD_AUTH=proxy) or use "
                "DASHBOARD_AUTH=oidc. See docs/deployment.md.",
                id="batches.W001",
            )
        )
        if conf().operator_groups:
            problems.append(
                Warning(
                    "DASHBOARD_OPERATOR_GROUPS is set but ignored: with DASHBOARD_AUTH=none everybody may act.",
                    id="batches.W002",
                )
            )
    if conf().auth == "proxy" and any(net in EVERYONE for net in conf().trusted_proxies):
        problems.append(
            Warning(
                "DASHBOARD_TRUSTED_PROXIES trusts every address: anyone who can reach the dashboard "
                "directly can claim to be anyone.",
                hint="List only the address of the authenticating proxy (default: loopback).",
                id="batches.W003",
            )
        )
    return problems


@register()
def check_projects(app_configs, **kwargs):
    """A bad projects file refuses to start, naming the project and the field (never a 500 later)."""
    try:
        load_projects()
    except ProjectsConfigError as err:
        return [
            Error(f"DASHBOARD_PROJECTS_FILE: {problem}", hint="See the example in docs/projects.example.toml.", id="batches.E010")
            for problem in err.problems
        ]
    return []
