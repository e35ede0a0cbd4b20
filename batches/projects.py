"""The OpenAI projects one dashboard serves (who may see and act in each: ``access.py``).

API keys belong to a project and a batch is invisible to another project's key (NOTES.md §6.5), so
"the organization's batches" means several keys. ``DASHBOARD_PROJECTS_FILE`` names a TOML file; keys
stay in the environment and the file names the variables that hold them::

    [projects.prod]
    name = "Production"
    api_key_env = "OPENAI_API_KEY_PROD"
    base_url = "https://api.openai.com/v1"        # optional, default OPENAI_BASE_URL
    organization = "org-…"                        # optional, OpenAI-Organization
    project = "proj_…"                            # optional, OpenAI-Project
    webhook_secret_env = "OPENAI_WEBHOOK_SECRET_PROD"
    viewer_groups = ["ml-team"]                   # absent or empty: every signed-in person
    operator_groups = ["ml-oncall"]               # absent: the DASHBOARD_OPERATOR_GROUPS rule
    provider = "openai"                           # or "azure", "anthropic" (docs/providers.md)
    api_version = "2024-10-21"                    # Azure: the versioned paths; Anthropic: anthropic-version
    deployments = {my-deployment = "gpt-4o-mini"} # Azure: each deployment's model, for prices

Without the file, ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` / ``OPENAI_ORG_ID`` / ``OPENAI_PROJECT_ID``
(and ``OPENAI_WEBHOOK_SECRET``) define one project, ``default``. A bad file is a system check error
(``batches.E010``), so the dashboard refuses to start instead of failing a page later.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.core.exceptions import ImproperlyConfigured

from .cache import LocalCache
from .conf import conf
from .project_money import Budget, parse_budget, parse_organization
from .project_limits import JobLimits, parse_limits
from .project_tables import check_table
from .upstream.providers import DEFAULT_PROVIDER, PROVIDER_NAMES, ProviderInfo, provider_info
from .vocabulary import DEFAULT_SLUG, SLUG_PATTERN

KNOWN_FIELDS = frozenset(
    {"name", "api_key_env", "base_url", "organization", "project", "webhook_secret_env", "viewer_groups", "operator_groups",
     "provider", "api_version", "deployments", "limits", "budget"}
)
API_VERSION_PATTERN = re.compile(r"[0-9A-Za-z][0-9A-Za-z.-]{0,39}")


@dataclass(frozen=True)
class Project:
    slug: str
    name: str
    api_key: str = field(repr=False)
    base_url: str
    organization: str = ""
    project_id: str = ""
    webhook_secret: str = field(default="", repr=False)
    viewer_groups: frozenset[str] = frozenset()
    #: None: the global DASHBOARD_OPERATOR_GROUPS rule applies.
    operator_groups: frozenset[str] | None = None
    api_key_env: str = "OPENAI_API_KEY"
    #: "openai", "azure" or "anthropic": which client speaks to it (batches/upstream/).
    provider: str = DEFAULT_PROVIDER
    #: Azure: the api-version of the versioned paths (empty: the /openai/v1 form). Anthropic: the
    #: anthropic-version header (empty: the client's default).
    api_version: str = ""
    #: Azure: deployment name -> the OpenAI model it serves (prices).
    deployments: dict[str, str] = field(default_factory=dict, compare=False)
    #: [projects.<slug>.limits]: batch size and enqueued-token budgets for jobs (batches/project_limits.py).
    limits: JobLimits = JobLimits()
    #: ``[projects.<slug>.budget]`` (batches/project_money.py), None without one.
    budget: Budget | None = None

    @property
    def provider_info(self) -> ProviderInfo:
        return provider_info(self.provider)


class ProjectsConfigError(ImproperlyConfigured):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def _groups(value, where: str, problems: list[str]) -> frozenset[str] | None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        problems.append(f"{where} must be a list of group names (strings).")
        return None
    return frozenset(item.strip() for item in value if item.strip())


def _string(table: dict, key: str, where: str, problems: list[str], default: str = "") -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        problems.append(f"{where}.{key} must be a string.")
        return default
    return value.strip()


def _deployments(value, where: str, problems: list[str]) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in value.items()):
        problems.append(f'{where}: deployments must be a table of deployment name = "model" (strings), e.g. {{my-deployment = "gpt-4o-mini"}}.')
        return {}
    return {key.strip(): model.strip() for key, model in value.items()}


def _provider_fields(table: dict, where: str, problems: list[str]) -> tuple[str, str, dict[str, str], str]:
    """(provider, api_version, deployments, base_url), with a problem for each field that does not fit
    the provider, by what ``batches.upstream.providers`` says each one takes (docs/providers.md)."""
    provider = _string(table, "provider", where, problems, DEFAULT_PROVIDER) or DEFAULT_PROVIDER
    if provider not in PROVIDER_NAMES:
        problems.append(f"{where}: provider must be one of {', '.join(PROVIDER_NAMES)}, not “{provider}”.")
        provider = DEFAULT_PROVIDER
    info = provider_info(provider)
    api_version = _string(table, "api_version", where, problems)
    if api_version and not info.api_version_is:
        problems.append(f"{where}: api_version is for Azure and Anthropic projects; {info.label}'s API has none.")
    elif api_version and not API_VERSION_PATTERN.fullmatch(api_version):
        problems.append(f"{where}: api_version “{api_version[:40]}” is not a version (such as 2024-10-21).")
    deployments = _deployments(table["deployments"], where, problems) if "deployments" in table else {}
    if deployments and not info.model_is_deployment:
        problems.append(f'{where}: deployments is for Azure projects only (provider = "azure").')
    given_url = _string(table, "base_url", where, problems).rstrip("/")
    default_url = conf().openai_base_url if info.default_base_url is None else info.default_base_url
    base_url = given_url or default_url
    suffix = info.unversioned_suffix
    if not base_url:
        problems.append(f"{where}: base_url is required for {info.label}: the resource's endpoint (https://<resource>.openai.azure.com).")
    elif suffix and api_version and base_url.endswith(suffix):
        problems.append(f"{where}: api_version goes with the resource's endpoint; a base_url ending in {suffix} takes none.")
    elif suffix and not api_version and not base_url.endswith(suffix):
        problems.append(f"{where}: an {info.label} base_url without api_version must end in {suffix}; or set api_version (such as 2024-10-21).")
    if not info.openai_headers:
        for key in ("organization", "project"):
            if _string(table, key, where, problems):
                problems.append(f"{where}: {key} is an OpenAI header; {info.label} projects have none (a key belongs to one workspace).")
    if base_url and not base_url.startswith(("http://", "https://")):
        problems.append(f"{where}: base_url must start with http:// or https://.")
    return provider, api_version, deployments, base_url


def parse_projects(text: str, environ: Mapping[str, str] | None = None) -> list[Project]:
    """Projects from the TOML text, in file order; raises :class:`ProjectsConfigError` naming each
    project and field that is wrong. The variables the file names are looked up in ``environ``, or
    (None) in the process environment."""
    secret = conf().secret_from_env if environ is None else (lambda name: environ.get(name, "").strip())
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ProjectsConfigError([f"the projects file is not valid TOML: {err}"]) from err
    problems: list[str] = []
    unknown_top = set(data) - {"projects", "organization"}
    if unknown_top:
        problems.append(f"unknown top-level field(s) {', '.join(sorted(unknown_top))}: only [projects.<slug>] and [organization] tables belong here.")
    parse_organization(data.get("organization"), problems, secret)
    tables = data.get("projects")
    if not isinstance(tables, dict) or not tables:
        problems.append("the projects file defines no project: add a [projects.<slug>] table.")
        raise ProjectsConfigError(problems)
    projects: list[Project] = []
    keys_seen: dict[str, str] = {}
    for slug, table in tables.items():
        where = f"project “{slug}”"
        if not SLUG_PATTERN.fullmatch(slug):
            problems.append(f"{where}: the slug must match [a-z0-9][a-z0-9-]{{0,39}} (lower-case letters, digits, dashes).")
            continue
        if not check_table(table, where, KNOWN_FIELDS, problems, written=f"[projects.{slug}]"):
            continue
        key_env = _string(table, "api_key_env", where, problems)
        api_key = ""
        if not key_env:
            problems.append(f"{where}: api_key_env is required (the environment variable holding its API key).")
        else:
            api_key = secret(key_env)
            if not api_key:
                problems.append(f"{where}: api_key_env names {key_env}, which is missing or empty in the environment.")
            elif api_key in keys_seen:
                problems.append(f"{where}: uses the same API key as project “{keys_seen[api_key]}” ({key_env}); each project needs its own key.")
            else:
                keys_seen[api_key] = slug
        secret_env = _string(table, "webhook_secret_env", where, problems)
        viewer_groups = _groups(table["viewer_groups"], f"{where}: viewer_groups", problems) if "viewer_groups" in table else frozenset()
        operator_groups = _groups(table["operator_groups"], f"{where}: operator_groups", problems) if "operator_groups" in table else None
        provider, api_version, deployments, base_url = _provider_fields(table, where, problems)
        if secret_env and not provider_info(provider).webhooks:
            label = provider_info(provider).label
            problems.append(f"{where}: webhook_secret_env is set, but {label} sends no webhooks for batches (the sync keeps it fresh).")
        projects.append(
            Project(
                slug=slug,
                name=_string(table, "name", where, problems) or slug,
                api_key=api_key,
                base_url=base_url.rstrip("/"),
                organization=_string(table, "organization", where, problems),
                project_id=_string(table, "project", where, problems),
                webhook_secret=secret(secret_env) if secret_env else "",
                viewer_groups=viewer_groups or frozenset(),
                operator_groups=operator_groups,
                api_key_env=key_env,
                provider=provider,
                api_version=api_version,
                deployments=deployments,
                limits=parse_limits(table.get("limits"), where, problems, max_requests=provider_info(provider).max_requests,
                                    max_bytes=provider_info(provider).max_bytes),
                budget=parse_budget(table.get("budget"), where, problems),
            )
        )
    if problems:
        raise ProjectsConfigError(problems)
    return projects


def _default_project() -> Project:
    settings = conf()
    return Project(
        slug=DEFAULT_SLUG,
        name=settings.default_project_name,
        api_key=settings.openai_api_key,
        base_url=settings.openai_base_url.rstrip("/"),
        organization=settings.openai_org_id,
        project_id=settings.openai_project_id,
        webhook_secret=settings.openai_webhook_secret,
    )


# The projects as last read, under what they were read from (the file's stamp, or the settings).
_read: LocalCache[tuple, tuple[Project, ...]] = LocalCache(maxsize=1)


def _config_key() -> tuple:
    """What the projects are made of: the file (and when it last changed), or the settings themselves."""
    settings = conf()
    path = settings.projects_file
    if path:
        try:
            stamp = os.stat(path).st_mtime_ns
        except OSError:
            stamp = None
        return ("file", path, stamp, settings.openai_base_url)
    return ("settings", settings)


def load_projects() -> tuple[Project, ...]:
    """Read the configuration afresh (raises :class:`ProjectsConfigError`)."""
    path = conf().projects_file
    if not path:
        return (_default_project(),)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as err:
        raise ProjectsConfigError([f"DASHBOARD_PROJECTS_FILE={path} cannot be read: {err.strerror or err}."]) from err
    return tuple(parse_projects(text))


def all_projects() -> tuple[Project, ...]:
    """Every configured project, in display order (the first is the default)."""
    return _read.get_or_make(_config_key(), load_projects)


def get_project(slug: str) -> Project | None:
    for project in all_projects():
        if project.slug == slug:
            return project
    return None
