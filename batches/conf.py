"""The dashboard's own settings, typed, read in one place.

``dashboard/settings.py`` is the only module that reads the environment: it defines every setting below
with its default (README's "Configuration" table lists them). :func:`conf` reads them from Django's
settings once, into one frozen :class:`DashboardConf`, and again only after a setting changes (Django's
``setting_changed`` signal, which tests' setting overrides send)::

    from batches.conf import conf
    if conf().auth == "none": ...

A setting that ``dashboard/settings.py`` forgot to define is an error naming it, not a default made
up on the spot.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field, fields

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: A page polls no faster than this, whatever DASHBOARD_POLL_SECONDS says.
MIN_POLL_SECONDS = 0.5
#: The index is "behind" when its last good sync is older than this many sync intervals.
STALE_AFTER_SYNC_INTERVALS = 2


def _setting(name: str, **options):
    return field(metadata={"setting": name}, **options)


@dataclass(frozen=True)
class DashboardConf:
    # Identity and roles (batches/auth.py, batches/access.py)
    auth: str = _setting("DASHBOARD_AUTH")
    auth_header: str = _setting("DASHBOARD_AUTH_HEADER")
    groups_header: str = _setting("DASHBOARD_GROUPS_HEADER")
    operator_groups: frozenset[str] = _setting("DASHBOARD_OPERATOR_GROUPS")
    trusted_proxies: tuple[Network, ...] = _setting("DASHBOARD_TRUSTED_PROXIES")
    # The one project of a setup without a projects file (batches/projects.py)
    projects_file: str = _setting("DASHBOARD_PROJECTS_FILE")
    default_project_name: str = _setting("DASHBOARD_DEFAULT_PROJECT_NAME")
    openai_api_key: str = _setting("OPENAI_API_KEY", repr=False)
    openai_base_url: str = _setting("OPENAI_BASE_URL")
    openai_org_id: str = _setting("OPENAI_ORG_ID")
    openai_project_id: str = _setting("OPENAI_PROJECT_ID")
    openai_webhook_secret: str = _setting("OPENAI_WEBHOOK_SECRET", repr=False)
    #: Looks up an environment variable a projects file names (a project's key or webhook secret).
    secret_from_env: Callable[[str], str] = _setting("DASHBOARD_SECRET_FROM_ENV", repr=False)
    # The upstream
    openai_timeout: float = _setting("OPENAI_TIMEOUT")
    openai_connect_timeout: float = _setting("OPENAI_CONNECT_TIMEOUT")
    cache_seconds: float = _setting("DASHBOARD_CACHE_SECONDS")
    # The sync (batches/index/)
    sync_seconds: float = _setting("DASHBOARD_SYNC_SECONDS")
    sync_backfill_pages: int = _setting("DASHBOARD_SYNC_BACKFILL_PAGES")
    sync_refresh_pages: int = _setting("DASHBOARD_SYNC_REFRESH_PAGES")
    sync_stragglers: int = _setting("DASHBOARD_SYNC_STRAGGLERS")
    sync_call_budget: int = _setting("DASHBOARD_SYNC_CALL_BUDGET")
    # Billed costs and budgets (batches/costs/)
    costs_sync_seconds: float = _setting("DASHBOARD_COSTS_SYNC_SECONDS")
    # Pages
    poll_seconds: float = _setting("DASHBOARD_POLL_SECONDS")
    emulator: bool = _setting("DASHBOARD_EMULATOR")
    price_overrides: str = _setting("DASHBOARD_PRICE_OVERRIDES")
    # Operations (batches/views/ops.py)
    metrics_allowed: tuple[Network, ...] = _setting("DASHBOARD_METRICS_ALLOWED")
    metrics_dirs: tuple[str, ...] = _setting("DASHBOARD_METRICS_DIRS")
    prometheus_multiproc_dir: str = _setting("PROMETHEUS_MULTIPROC_DIR")
    ready_require_worker: bool = _setting("DASHBOARD_READY_REQUIRE_WORKER")
    ready_require_sync: bool = _setting("DASHBOARD_READY_REQUIRE_SYNC")
    ready_sync_lag_seconds: float = _setting("DASHBOARD_READY_SYNC_LAG_SECONDS")
    worker_heartbeat_seconds: float = _setting("DASHBOARD_WORKER_HEARTBEAT_SECONDS")
    # Notifications (batches/notify/)
    public_url: str = _setting("DASHBOARD_PUBLIC_URL")
    notify_max_attempts: int = _setting("DASHBOARD_NOTIFY_MAX_ATTEMPTS")
    # Hardening (docs/security.md): where webhook sends may go, hung upstreams, the task queue
    notify_allowed_hosts: tuple[str, ...] = _setting("DASHBOARD_NOTIFY_ALLOWED_HOSTS")
    notify_internal_hosts: tuple[str, ...] = _setting("DASHBOARD_NOTIFY_INTERNAL_HOSTS")
    notify_send_seconds: float = _setting("DASHBOARD_NOTIFY_SEND_SECONDS")
    page_read_seconds: float = _setting("DASHBOARD_PAGE_READ_SECONDS")
    breaker_timeouts: int = _setting("DASHBOARD_BREAKER_TIMEOUTS")
    breaker_open_seconds: float = _setting("DASHBOARD_BREAKER_OPEN_SECONDS")
    upstream_page_slots: int = _setting("DASHBOARD_UPSTREAM_PAGE_SLOTS")
    upstream_slow_seconds: float = _setting("DASHBOARD_UPSTREAM_SLOW_SECONDS")
    ready_queue_age_seconds: float = _setting("DASHBOARD_READY_QUEUE_AGE_SECONDS")
    task_stuck_seconds: float = _setting("DASHBOARD_TASK_STUCK_SECONDS")
    # Jobs (batches/jobs/)
    jobs_tick_seconds: float = _setting("DASHBOARD_JOBS_TICK_SECONDS")
    jobs_backoff_seconds: float = _setting("DASHBOARD_JOBS_BACKOFF_SECONDS")

    @property
    def poll_seconds_text(self) -> str:
        """Seconds between a live page's polls as htmx's ``every Ns`` wants them (``5``, ``0.5``): the
        setting, clamped to :data:`MIN_POLL_SECONDS`."""
        return f"{max(self.poll_seconds, MIN_POLL_SECONDS):g}"

    @property
    def stale_after_seconds(self) -> float:
        """Two sync intervals: an index (or a row) synced longer ago than this is behind."""
        return STALE_AFTER_SYNC_INTERVALS * self.sync_seconds


_TYPES: dict[object, Callable] = {
    "str": str,
    "float": float,
    "int": int,
    "bool": bool,
    "frozenset[str]": frozenset,
    "tuple[Network, ...]": tuple,
    "tuple[str, ...]": tuple,
}


@functools.cache
def conf() -> DashboardConf:
    """The settings, read once (and again after a setting changed)."""
    values = {}
    for item in fields(DashboardConf):
        name = item.metadata["setting"]
        try:
            value = getattr(settings, name)
        except AttributeError:
            raise ImproperlyConfigured(f"The setting {name} is not defined (dashboard/settings.py defines it).") from None
        convert = _TYPES.get(item.type)
        values[item.name] = convert(value) if convert is not None else value
    return DashboardConf(**values)


@receiver(setting_changed)
def _forget(**kwargs) -> None:
    conf.cache_clear()
