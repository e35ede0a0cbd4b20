"""Where in the live list a request is: the cursor, the page size and the trail of earlier cursors,
read from the query string by :class:`ListPositionForm`.

Paging follows the API's forward-only ``after`` cursor (shared/openai-spec/NOTES.md §1.2: there is no
``before``). "Previous" works from a trail of earlier cursors kept in the query string (``prev``), so
every page, including its way back, is a URL an operator can paste to a teammate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from django.urls import reverse

from .querystring import QueryForm, TextField
from .upstream import InvalidId, validate_id
from .vocabulary import DEFAULT_LIMIT

# The "Previous" trail holds at most this many cursors (about 2 KB of URL); beyond it the oldest are
# dropped, and "Previous" from the deepest pages eventually lands on the first page.
MAX_TRAIL = 50


@dataclass(frozen=True)
class ListPosition:
    """Where in the list a request is: the cursor, the page size and the trail of earlier cursors."""

    project: str
    after: str | None
    limit: int
    trail: tuple[str, ...] = ()

    def url(self, after: str | None, trail: tuple[str, ...]) -> str:
        params: dict[str, str] = {}
        if after:
            params["after"] = after
        if self.limit != DEFAULT_LIMIT:
            params["limit"] = str(self.limit)
        if after and trail:
            params["prev"] = ",".join(trail[-MAX_TRAIL:])
        base = reverse("batches:list", args=[self.project])
        return f"{base}?{urlencode(params, safe=',')}" if params else base

    @property
    def self_url(self) -> str:
        return self.url(self.after, self.trail)

    @property
    def first_url(self) -> str | None:
        return self.url(None, ()) if self.after else None

    @property
    def prev_url(self) -> str | None:
        if not self.after:
            return None
        if not self.trail:
            return self.url(None, ())
        return self.url(self.trail[-1], self.trail[:-1])

    def next_url(self, next_after: str | None) -> str | None:
        if not next_after:
            return None
        trail = (*self.trail, self.after) if self.after else ()
        return self.url(next_after, trail)


class ListPositionForm(QueryForm):
    """``after``, ``limit`` and ``prev``. Bad values are replaced by safe defaults and explained in
    ``problems`` (shown on the page), never turned into a server error."""

    after = TextField()
    limit = TextField()
    prev = TextField()

    def clean_after(self) -> str | None:
        after = self.cleaned_data["after"] or None
        if after is not None:
            try:
                validate_id(after)
            except InvalidId:
                self.problem("The “after” cursor in the address is not a valid batch id; showing the first page instead.")
                return None
        return after

    def clean_limit(self) -> int:
        return self.page_size(self.cleaned_data["limit"])

    def clean_prev(self) -> tuple[str, ...]:
        raw = self.cleaned_data["prev"]
        if not (self.cleaned_data.get("after") and raw):
            return ()
        candidates = tuple(item for item in raw.split(",") if item)
        try:
            for item in candidates:
                validate_id(item)
        except InvalidId:
            # A mangled trail only costs the "Previous" link its memory; "First page" still works.
            return ()
        return candidates[-MAX_TRAIL:]


def parse_list_params(params: Mapping, project: str = "default") -> tuple[ListPosition, list[str]]:
    form = ListPositionForm(params)
    values = form.values
    return ListPosition(project=project, after=values["after"], limit=values["limit"], trail=values["prev"]), form.problems
