"""Reading the audit trail: a batch's history, and the filtered, paginated list behind ``/audit/``.

Writing it is ``services.audited()``: a row before the upstream call, completed after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import QueryDict

from .models import AuditEntry
from .querystring import QueryForm, TextField

AUDIT_PAGE_SIZE = 50
BATCH_HISTORY_LIMIT = 20


@dataclass(frozen=True)
class AuditFilters:
    actor: str = ""
    action: str = ""
    batch_id: str = ""
    project: str = ""
    problems: list[str] = field(default_factory=list, compare=False)

    @property
    def active(self) -> bool:
        return bool(self.actor or self.action or self.batch_id or self.project)

    def as_query(self) -> dict[str, str]:
        """The filters as query parameters, for links that keep them (pager, shareable URL)."""
        pairs = {"project": self.project, "person": self.actor, "action": self.action, "batch": self.batch_id}
        return {key: value for key, value in pairs.items() if value}


class AuditFilterForm(QueryForm):
    """``project``, ``person``, ``action`` and ``batch`` from the query string. ``visible``: the slugs
    of the projects this person may see; any other project is ignored as if it did not exist."""

    project = TextField()
    person = TextField()
    action = TextField()
    batch = TextField()

    def __init__(self, data, visible: list[str]) -> None:
        super().__init__(data)
        self.visible = visible

    def clean_project(self) -> str:
        project = self.cleaned_data["project"]
        if project and project not in self.visible:
            self.problem("There is no such project, or you are not a member of it; showing every project you may see.")
            return ""
        return project

    def clean_person(self) -> str:
        return self.cleaned_data["person"][:254]

    def clean_action(self) -> str:
        action = self.cleaned_data["action"]
        if action and action not in AuditEntry.Action.values:
            self.problem(f"“{action}” is not an action the dashboard records; showing every action.")
            return ""
        return action

    def clean_batch(self) -> str:
        return self.cleaned_data["batch"][:200]

    @property
    def filters(self) -> AuditFilters:
        values = self.values
        return AuditFilters(
            actor=values["person"], action=values["action"], batch_id=values["batch"], project=values["project"],
            problems=self.problems,
        )


def audit_filters_from_query(query: QueryDict, visible: list[str]) -> AuditFilters:
    return AuditFilterForm(query, visible).filters


def audit_search(filters: AuditFilters, visible: list[str]) -> QuerySet[AuditEntry]:
    wanted = {"project": filters.project, "actor__icontains": filters.actor, "action": filters.action,
              "batch_id": filters.batch_id}
    return AuditEntry.objects.filter(project__in=visible, **{lookup: value for lookup, value in wanted.items() if value})


def audit_page(filters: AuditFilters, visible: list[str], page_number: str | None) -> Page:
    """One page of matching entries; an out-of-range or malformed page number gives the nearest page."""
    return Paginator(audit_search(filters, visible), AUDIT_PAGE_SIZE).get_page(page_number)


def audit_for_batch(project: str, batch_id: str, limit: int = BATCH_HISTORY_LIMIT) -> list[AuditEntry]:
    """The most recent actions on one batch of one project, newest first (its creation included)."""
    return list(AuditEntry.objects.filter(project=project, batch_id=batch_id)[:limit])
