"""The money tables of the projects file: each project's budget, and the organization's admin key.

::

    [organization]
    admin_key_env = "OPENAI_ADMIN_KEY"   # the variable holding an admin key: never shown, never logged
    base_url = "https://api.openai.com/v1"  # optional, default OPENAI_BASE_URL

    [projects.prod.budget]
    monthly_usd = 500.0          # this calendar month, UTC
    alert_at = [0.5, 0.8, 1.0]   # fractions of the budget (default these three)
    block_at_limit = false       # true: refuse new batches and jobs once the month's spend reaches it
    drift_alert = 0.15           # billed vs estimated, as a fraction of the bill, that raises a notification

Ground floor: only the standard library, the dashboard's typed settings and ``project_tables.py``. ``batches/projects.py`` calls
:func:`parse_budget` for each project and :func:`parse_organization` for the file, adding every
problem (naming the project and the field) to the sentences of its system check, so a bad value
refuses to start like any other mistake in the file. The money app (``batches/costs``) reads them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from .conf import conf
from .project_tables import check_table

DEFAULT_ALERT_AT = (0.5, 0.8, 1.0)
DEFAULT_DRIFT_ALERT = 0.15
BUDGET_FIELDS = frozenset({"monthly_usd", "alert_at", "block_at_limit", "drift_alert"})
ORGANIZATION_FIELDS = frozenset({"admin_key_env", "base_url"})
#: A monthly budget above this is a typo, not a budget.
MAX_MONTHLY_USD = 100_000_000


@dataclass(frozen=True)
class Budget:
    monthly_usd: Decimal
    alert_at: tuple[float, ...] = DEFAULT_ALERT_AT
    block_at_limit: bool = False
    drift_alert: float = DEFAULT_DRIFT_ALERT


@dataclass(frozen=True)
class Organization:
    """The Admin API's access: ``admin_key`` is a secret (not in ``repr``, never in a page or log)."""

    admin_key_env: str
    admin_key: str = field(repr=False)
    base_url: str


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def parse_budget(table, where: str, problems: list[str]) -> Budget | None:
    """The ``budget`` table of one project (``where`` names it), or None when it has none. Each
    problem becomes a sentence in ``problems`` naming the project and the field."""
    if table is None:
        return None
    if not check_table(table, f"{where}: budget", BUDGET_FIELDS, problems, written="[projects.<slug>.budget]"):
        return None
    before = len(problems)
    monthly = _number(table.get("monthly_usd"))
    if "monthly_usd" not in table:
        problems.append(f"{where}: budget.monthly_usd is required (US dollars for a calendar month, UTC).")
    elif monthly is None or monthly <= 0 or monthly > MAX_MONTHLY_USD:
        problems.append(f"{where}: budget.monthly_usd must be a number of US dollars above 0, not {table['monthly_usd']!r}.")
    alert_at = table.get("alert_at", list(DEFAULT_ALERT_AT))
    fractions = [_number(item) for item in alert_at] if isinstance(alert_at, list) else [None]
    if not fractions or any(item is None or not 0 < item <= 10 for item in fractions):
        problems.append(
            f"{where}: budget.alert_at must be a list of fractions of the budget above 0 (such as [0.5, 0.8, 1.0]), "
            f"not {alert_at!r}."
        )
    block = table.get("block_at_limit", False)
    if not isinstance(block, bool):
        problems.append(f"{where}: budget.block_at_limit must be true or false, not {block!r}.")
    drift = _number(table.get("drift_alert", DEFAULT_DRIFT_ALERT))
    if drift is None or not 0 < drift <= 10:
        problems.append(f"{where}: budget.drift_alert must be a fraction above 0 (such as 0.15), not {table.get('drift_alert')!r}.")
    if len(problems) > before:
        return None
    return Budget(
        monthly_usd=Decimal(str(monthly)),
        alert_at=tuple(sorted(set(fractions))),
        block_at_limit=block,
        drift_alert=drift,
    )


def parse_organization(table, problems: list[str], secret: Callable[[str], str]) -> Organization | None:
    """The ``[organization]`` table, or None when the file has none; ``secret`` looks up the variable
    it names (``conf().secret_from_env``, as for the projects' keys)."""
    if table is None:
        return None
    where = "[organization]"
    if not check_table(table, where, ORGANIZATION_FIELDS, problems):
        return None
    key_env = table.get("admin_key_env", "")
    base_url = table.get("base_url", "")
    if not isinstance(key_env, str) or not key_env.strip():
        problems.append(f"{where}: admin_key_env is required (the environment variable holding an admin key).")
        return None
    key_env = key_env.strip()
    admin_key = (secret(key_env) or "").strip()
    if not admin_key:
        problems.append(f"{where}: admin_key_env names {key_env}, which is missing or empty in the environment.")
    if not isinstance(base_url, str):
        problems.append(f"{where}: base_url must be a string.")
        base_url = ""
    base_url = base_url.strip() or conf().openai_base_url
    if not base_url.startswith(("http://", "https://")):
        problems.append(f"{where}: base_url must start with http:// or https://.")
    if not admin_key:
        return None
    return Organization(admin_key_env=key_env, admin_key=admin_key, base_url=base_url.rstrip("/"))
