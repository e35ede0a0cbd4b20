"""The filters of a filtered view: read from the query string by :class:`FilterForm`, held as
:class:`Filters`, written back as the canonical query string (only what is set).

Pages are keyset pages, never OFFSET: the ``after`` cursor is the last row's sort key and batch id,
written readably as ``<key>,<batch id>`` (``null`` for a missing key; ``/search/`` adds ``,<project>``
because it spans projects). A batch id never contains a comma (``ID_PATTERN``), so the split is exact.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

from ..querystring import ListField, QueryForm, TextField
from ..upstream import ID_PATTERN, PROVIDER_NAMES
from ..vocabulary import (
    DEFAULT_LIMIT,
    DEFAULT_SORT,
    FLAGS,
    KNOWN_STATUSES,
    SLUG_PATTERN,
    SORTS,
)

#: The parameters that make the list a filtered view served from the index.
FILTER_PARAMS = ("status", "endpoint", "model", "created_after", "created_before", "q", "meta", "flag", "sort", "provider")
STATUS_FORM = re.compile(r"[a-z_]{1,32}")
MAX_Q = 200
MAX_META = 5
# Metadata: up to 16 pairs, keys up to 64 characters, values up to 512 (NOTES.md §2, Metadata).
MAX_META_KEY = 64
MAX_META_VALUE = 512


@dataclass(frozen=True)
class Cursor:
    key: int | None
    batch_id: str
    project: str = ""

    def encode(self) -> str:
        text = f"{'null' if self.key is None else self.key},{self.batch_id}"
        return f"{text},{self.project}" if self.project else text

    @classmethod
    def decode(cls, text: str, *, cross_project: bool) -> Cursor:
        parts = text.split(",")
        if len(parts) != (3 if cross_project else 2):
            raise ValueError(text)
        key_text, batch_id = parts[0], parts[1]
        key = None if key_text == "null" else int(key_text)
        if not ID_PATTERN.fullmatch(batch_id):
            raise ValueError(text)
        project = parts[2] if cross_project else ""
        if cross_project and not SLUG_PATTERN.fullmatch(project):
            raise ValueError(text)
        return cls(key=key, batch_id=batch_id, project=project)


@dataclass(frozen=True)
class Filters:
    statuses: tuple[str, ...] = ()
    endpoint: str = ""
    model: str = ""
    created_after: dt.date | None = None
    created_before: dt.date | None = None
    q: str = ""
    meta: tuple[tuple[str, str], ...] = ()
    flag: str = ""
    sort: str = DEFAULT_SORT
    after: Cursor | None = None
    limit: int = DEFAULT_LIMIT
    #: Providers picked ("openai", "azure", "anthropic"; repeatable): which APIs the batches live in.
    providers: tuple[str, ...] = ()
    cross_project: bool = field(default=False, compare=False)
    #: Set when ``q`` was already turned into a set of candidate rows (see ``_q_candidates``).
    _q_applied: bool = field(default=False, compare=False, repr=False)

    @property
    def active(self) -> bool:
        """Is anything narrowing or reordering the list (what makes it an index view)?"""
        return bool(
            self.statuses or self.endpoint or self.model or self.created_after or self.created_before
            or self.q or self.meta or self.flag or self.sort != DEFAULT_SORT or self.providers
        )

    @property
    def narrowing(self) -> bool:
        """Does anything besides the status pick rows (so the filter's counts differ from the project's)?"""
        return bool(
            self.endpoint or self.model or self.created_after or self.created_before or self.q or self.meta
            or self.flag or self._q_applied or self.providers
        )

    def params(self, *, with_cursor: bool = True, with_limit: bool = True) -> list[tuple[str, str]]:
        """The canonical query string of this view, as (name, value) pairs, defaults left out."""
        out: list[tuple[str, str]] = [("status", status) for status in self.statuses]
        out.extend(("provider", provider) for provider in self.providers)
        for name in ("endpoint", "model", "q"):
            if getattr(self, name):
                out.append((name, getattr(self, name)))
        if self.created_after:
            out.append(("created_after", self.created_after.isoformat()))
        if self.created_before:
            out.append(("created_before", self.created_before.isoformat()))
        out.extend(("meta", f"{key}:{value}") for key, value in self.meta)
        if self.flag:
            out.append(("flag", self.flag))
        if self.sort != DEFAULT_SORT:
            out.append(("sort", self.sort))
        if with_limit and self.limit != DEFAULT_LIMIT:
            out.append(("limit", str(self.limit)))
        if with_cursor and self.after is not None:
            out.append(("after", self.after.encode()))
        return out

    def query(self, **changes) -> str:
        """``?…`` for this view with some fields changed (a new filter always starts at the first page)."""
        changes.setdefault("after", None)
        params = replace(self, **changes).params()
        return "?" + urlencode(params, safe=",:/") if params else ""


def has_filters(params: Mapping) -> bool:
    """Whether a query string asks for a filtered view (empty fields of a submitted form do not)."""
    for name in FILTER_PARAMS:
        values = params.getlist(name) if hasattr(params, "getlist") else [params.get(name)]
        for value in values:
            value = (value or "").strip()
            if value and not (name == "sort" and value == DEFAULT_SORT):
                return True
    return False


class FilterForm(QueryForm):
    """The filters a query string asks for. Every bad value is a sentence in ``problems`` and is
    ignored; ``filters`` is what the page shows."""

    status = ListField()
    provider = ListField()
    endpoint = TextField()
    model = TextField()
    created_after = TextField()
    created_before = TextField()
    q = TextField()
    meta = ListField()
    flag = TextField()
    sort = TextField()
    limit = TextField()
    after = TextField()

    def __init__(self, data, *, cross_project: bool = False, known_statuses: Iterable[str] = ()) -> None:
        super().__init__(data)
        self.cross_project = cross_project
        self.allowed_statuses = KNOWN_STATUSES | set(known_statuses)

    def clean_status(self) -> tuple[str, ...]:
        statuses: list[str] = []
        for value in self.cleaned_data["status"]:
            if STATUS_FORM.fullmatch(value) and value in self.allowed_statuses:
                if value not in statuses:
                    statuses.append(value)
            else:
                self.problem(f"There is no status “{value[:40]}”; that status filter is ignored.")
        return tuple(statuses)

    def clean_provider(self) -> tuple[str, ...]:
        providers: list[str] = []
        for value in self.cleaned_data["provider"]:
            if value in PROVIDER_NAMES:
                if value not in providers:
                    providers.append(value)
            else:
                self.problem(f"There is no provider “{value[:40]}” (only {', '.join(PROVIDER_NAMES)}); that filter is ignored.")
        return tuple(providers)

    def clean_endpoint(self) -> str:
        endpoint = self.cleaned_data["endpoint"]
        if endpoint and (not endpoint.startswith("/") or len(endpoint) > 100 or not endpoint.isprintable()):
            self.problem("An endpoint looks like /v1/chat/completions; the endpoint filter is ignored.")
            return ""
        return endpoint

    def clean_model(self) -> str:
        model = self.cleaned_data["model"]
        if model and (len(model) > 200 or not model.isprintable()):
            self.problem("That model name is too long or has control characters; the model filter is ignored.")
            return ""
        return model

    def clean_created_after(self) -> dt.date | None:
        return self.day(self.cleaned_data["created_after"], "“created after”")

    def clean_created_before(self) -> dt.date | None:
        before = self.day(self.cleaned_data["created_before"], "“created before”")
        after = self.cleaned_data.get("created_after")
        if after and before and after > before:
            self.problem("“Created after” is later than “created before”; both date filters are ignored.")
            self.cleaned_data["created_after"] = None
            return None
        return before

    def clean_q(self) -> str:
        q = self.cleaned_data["q"]
        if len(q) > MAX_Q or not q.isprintable():
            self.problem(f"The search text must be at most {MAX_Q} printable characters; it is ignored.")
            return ""
        return q

    def clean_meta(self) -> tuple[tuple[str, str], ...]:
        meta: list[tuple[str, str]] = []
        for raw in self.cleaned_data["meta"]:
            key, sep, value = raw.partition(":")
            key = key.strip()
            if not sep or not key or len(key) > MAX_META_KEY or len(value) > MAX_META_VALUE or not raw.isprintable():
                self.problem(f"A metadata filter is written key:value (for example team:search); “{raw[:60]}” is ignored.")
            elif '"' in key or "\\" in key:
                # SQLite's JSON paths cannot quote these; q still finds the value.
                self.problem(
                    f"A metadata key with a quote or backslash cannot be filtered on; “{raw[:60]}” is ignored "
                    "(search its value with q)."
                )
            elif len(meta) >= MAX_META:
                self.problem(f"At most {MAX_META} metadata filters; “{raw[:60]}” is ignored.")
            else:
                meta.append((key, value))
        return tuple(meta)

    def clean_flag(self) -> str:
        flag = self.cleaned_data["flag"]
        if flag and flag not in FLAGS:
            self.problem(f"The flags are {', '.join(FLAGS)}; “{flag[:20]}” is ignored.")
            return ""
        return flag

    def clean_sort(self) -> str:
        sort = self.cleaned_data["sort"] or DEFAULT_SORT
        if sort not in SORTS:
            self.problem(f"Sort by {', '.join(SORTS)}; “{sort[:20]}” is ignored.")
            return DEFAULT_SORT
        return sort

    def clean_limit(self) -> int:
        return self.page_size(self.cleaned_data["limit"])

    def clean_after(self) -> Cursor | None:
        raw = self.cleaned_data["after"]
        if not raw:
            return None
        try:
            return Cursor.decode(raw, cross_project=self.cross_project)
        except ValueError:
            self.problem("The “after” position in the address is not one this view wrote; showing the first page.")
            return None

    @property
    def filters(self) -> Filters:
        values = self.values
        return Filters(
            statuses=values["status"], endpoint=values["endpoint"], model=values["model"],
            created_after=values["created_after"], created_before=values["created_before"], q=values["q"],
            meta=values["meta"], flag=values["flag"], sort=values["sort"], after=values["after"], limit=values["limit"],
            providers=values["provider"], cross_project=self.cross_project,
        )


def parse_filters(
    params: Mapping, *, cross_project: bool = False, known_statuses: Iterable[str] = ()
) -> tuple[Filters, list[str]]:
    """The filters a query string asks for, and one sentence per value that was ignored. Never raises."""
    form = FilterForm(params, cross_project=cross_project, known_statuses=known_statuses)
    return form.filters, form.problems
