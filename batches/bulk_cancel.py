"""Cancelling many batches at once from a filtered view: what each pick would do (from the index),
then each cancel through ``services.batch_request_cancel`` (one upstream call each, audited).

A pick names ``<project>/<batch id>``; a project the person may not see is treated as unknown, so
nothing about its batches leaks ("not found").
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest

from . import services
from .access import actor_name, may_operate
from .describe import status_label
from .index.selectors import records_by_id
from .models import BatchRecord
from .projects import Project
from .upstream import ID_PATTERN, UpstreamConflict, UpstreamError, UpstreamNotFound
from .vocabulary import CANCELLABLE_STATUSES, TERMINAL_STATUSES

#: At most this many batches per bulk cancel (each is one upstream call, in this request).
BULK_CANCEL_CAP = 500


@dataclass
class Pick:
    slug: str
    batch_id: str
    project: Project | None = None
    record: BatchRecord | None = None
    operator: bool = False
    outcome: str = ""
    detail: str = ""

    @property
    def value(self) -> str:
        return f"{self.slug}/{self.batch_id}"

    @property
    def cancellable(self) -> bool:
        return self.operator and self.record is not None and self.record.status in CANCELLABLE_STATUSES

    @property
    def expectation(self) -> str:
        """What confirming would do to this batch, from what the index knows."""
        if self.record is None:
            return "not found"
        if not self.operator:
            return "refused: you are not an operator of this project"
        if self.record.status in CANCELLABLE_STATUSES:
            return "will be cancelled"
        if self.record.status in TERMINAL_STATUSES:
            return f"already finished ({self.record.status})"
        return f"not cancellable ({status_label(self.record.status)})"


def parse_picks(values: list[str], allowed: dict[str, Project]) -> list[Pick]:
    picks: list[Pick] = []
    seen = set()
    for value in values:
        slug, sep, batch_id = value.partition("/")
        if not sep or not ID_PATTERN.fullmatch(batch_id) or (slug, batch_id) in seen:
            continue
        seen.add((slug, batch_id))
        picks.append(Pick(slug=slug, batch_id=batch_id, project=allowed.get(slug)))
    return picks


def resolve(request: HttpRequest, picks: list[Pick]) -> None:
    """Attach each pick's index row and whether this person may cancel in its project. A project the
    person may not see is treated as unknown: its batches are "not found", nothing about them leaks."""
    by_project: dict[str, list[Pick]] = {}
    for pick in picks:
        if pick.project is not None:
            by_project.setdefault(pick.slug, []).append(pick)
    for slug, group in by_project.items():
        records = records_by_id(slug, [p.batch_id for p in group])
        operator = may_operate(request, group[0].project)
        for pick in group:
            pick.record = records.get(pick.batch_id)
            pick.operator = operator


def cancel_one(request: HttpRequest, pick: Pick) -> None:
    if pick.record is None or pick.project is None:
        pick.outcome, pick.detail = "not found", "No such batch in the index of a project you may see."
        return
    if not pick.operator:
        pick.outcome, pick.detail = "refused", f"You are not an operator of project {pick.project.name}."
        return
    if pick.record.status not in CANCELLABLE_STATUSES:
        # The index says it already finished (a final state) or is cancelling: no upstream call.
        pick.outcome, pick.detail = "already finished", f"The batch is {status_label(pick.record.status)}."
        return
    try:
        batch = services.batch_request_cancel(pick.project, actor=actor_name(request), batch_id=pick.batch_id)
    except UpstreamConflict as err:
        pick.outcome = "already finished"
        pick.detail = "The API answered 409: the batch finished before the cancel arrived." + (
            f" It said: “{err.upstream_message}”" if err.upstream_message else ""
        )
    except UpstreamNotFound:
        pick.outcome, pick.detail = "not found", "The Batch API does not know this id."
    except UpstreamError as err:
        pick.outcome, pick.detail = "failed", f"{err} {err.hint or ''}".strip()
    else:
        pick.outcome, pick.detail = status_label(batch.status), "Cancel requested."


def tally(outcomes) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    return sorted(counts.items())
