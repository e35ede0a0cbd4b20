"""Whether a project's budget lets new work start, in one sentence.

:func:`budget_allows` is what the create page, ``create_job`` and the job scheduler ask before
anything is uploaded: ``(True, sentence)`` or ``(False, sentence)``, the sentence naming the budget
and the spend. Only ``block_at_limit = true`` refuses; running batches are never touched.
:func:`budget_enforce` also writes the refusal to the audit trail (outcome "refused").
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from ..models import AuditEntry
from ..oversight import pricing
from ..oversight.estimate import estimate_jsonl
from ..projects import Project
from ..project_money import Budget
from .spend import MonthSpend, month_spend

money = pricing.money


@dataclass(frozen=True)
class BudgetState:
    """A budget against this month's spend, for the bar on the project's pages and the costs page."""

    budget: Budget
    spend: MonthSpend

    @property
    def fraction(self) -> float:
        return float(self.spend.spend / self.budget.monthly_usd)

    @property
    def percent(self) -> int:
        """For the bar's width class (0–100, in steps of 5)."""
        return min(int(self.fraction * 20) * 5, 100)

    @property
    def reached(self) -> bool:
        return self.spend.spend >= self.budget.monthly_usd

    @property
    def forecast_over(self) -> bool:
        return self.spend.forecast > self.budget.monthly_usd

    @property
    def blocking(self) -> bool:
        return self.budget.block_at_limit and self.reached

    @property
    def meter(self) -> dict[str, str]:
        """The ``<meter>``'s max (the budget), value (the spend, up to the budget) and high (where it
        turns to a warning: the highest alert threshold below the budget), in dollars."""
        monthly = self.budget.monthly_usd
        below = [fraction for fraction in self.budget.alert_at if fraction < 1] or [0.8]
        return {
            "max": f"{monthly:.2f}",
            "value": f"{min(self.spend.spend, monthly):.2f}",
            "high": f"{monthly * Decimal(str(max(below))):.2f}",
        }

    @property
    def line(self) -> str:
        """“$312.00 of $500.00 this month, forecast $540.00”."""
        return f"{money(self.spend.spend)} of {money(self.budget.monthly_usd)} this month, forecast {money(self.spend.forecast)}"


def budget_state(project: Project, now=None) -> BudgetState | None:
    if project.budget is None:
        return None
    return BudgetState(project.budget, month_spend(project.slug, now))


def budget_allows(project: Project, estimated_usd, now=None) -> tuple[bool, str]:
    """May new work estimated at ``estimated_usd`` (a number, or None when unknown) start in
    ``project`` this month? Refused only with ``block_at_limit``: when the month's spend has reached the
    budget, or when the estimate would take it over."""
    state = budget_state(project, now)
    if state is None:
        return True, f"{project.name} has no budget."
    estimate = Decimal(str(estimated_usd or 0))
    spend, monthly = state.spend.spend, state.budget.monthly_usd
    where = f"{project.name}'s budget is {money(monthly)} this month and its spend so far is {money(spend)}"
    if state.reached:
        if not state.budget.block_at_limit:
            return True, f"{where}: the budget is reached (new work is not blocked: block_at_limit is off)."
        return False, (
            f"Refused: {where}, so the budget is reached. New batches and jobs are refused until the month ends "
            "or the budget is raised; running batches are not touched."
        )
    if estimate > 0 and spend + estimate > monthly:
        over = f"{where}; this work's estimated {money(estimate)} would take it to {money(spend + estimate)}"
        if not state.budget.block_at_limit:
            return True, f"{over}, over the budget (not blocked: block_at_limit is off)."
        return False, f"Refused: {over}, over the budget. Running batches are not touched."
    return True, f"{where}; {money(monthly - spend)} is left."


def budget_enforce(project: Project, estimated_usd, *, actor: str, action: str = AuditEntry.Action.CREATE,
                   file_id: str = "", now=None) -> tuple[bool, str]:
    """:func:`budget_allows`, and a refusal written to the audit trail (outcome "refused")."""
    allowed, sentence = budget_allows(project, estimated_usd, now)
    if not allowed:
        AuditEntry.objects.create(
            project=project.slug, actor=actor, action=action, file_id=file_id, outcome=AuditEntry.Outcome.REFUSED,
            message=sentence, finished_at=timezone.now(),
        )
    return allowed, sentence


def file_estimate(project: Project, fileobj) -> Decimal | None:
    """The estimated cost of a validated batch input file, for a project whose budget can refuse it
    (None otherwise, without reading the file): the cost at the requests' maximum output when every
    line sets one, else the input tokens' cost (output cannot be known before the batch runs)."""
    if fileobj is None or project.budget is None or not project.budget.block_at_limit:
        return None
    estimate = estimate_jsonl(fileobj)
    price = estimate.max_price if estimate.max_price is not None and estimate.max_price.known else estimate.input_price
    return price.amount
