"""Typed values read from the Batch and Files API, parsed tolerantly.

Any field other than ``id``, ``object``, ``endpoint``, ``input_file_id``, ``completion_window``,
``status`` and ``created_at`` may be absent or null, and new statuses, endpoints and fields appear over
time (shared/openai-spec/NOTES.md §2): parsing never rejects what it does not know, and unknown values
render as they are.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..vocabulary import CANCELLABLE_STATUSES, KNOWN_STATUSES, TERMINAL_STATUSES
from .errors import UpstreamBadResponse
from .providers import provider_info

# IDs are opaque (NOTES.md §7): we only insist on a safe character set and a bounded length. The first
# character must be alphanumeric, so "." and ".." can never form a path segment.
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:~+=@\-]{0,199}")

# CreateBatchRequest.endpoint enum (spec); the list grows over time, so reading never rejects others.
ENDPOINTS = (
    "/v1/responses",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
    "/v1/images/generations",
    "/v1/images/edits",
    "/v1/videos",
)
COMPLETION_WINDOWS = ("24h",)


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _time_or_none(value: Any) -> int | None:
    """Unix seconds from an int, or from an RFC 3339 / ISO 8601 string: Anthropic sends strings
    (``2026-12-07T06:00:00.123456Z`` or ``+00:00``), and Azure's REST examples show them too
    (provider-specs/NOTES.md §1.3, §2.7). A string without a zone is read as UTC."""
    number = _int_or_none(value)
    if number is not None or not isinstance(value, str) or not value.strip():
        return number
    text = value.strip()
    if text.isdigit():
        return int(text)
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp())


def _file_id_or_none(value: Any) -> str | None:
    """A file id, with ``""`` read as absent (Azure's fail-fast example sends ``"output_file_id": ""``)."""
    text = _str_or_none(value)
    return text or None


_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _status(value: Any) -> str:
    """The status in the common snake_case vocabulary: Azure's REST examples show ``Validating``, so
    ``InProgress`` and ``IN_PROGRESS`` read as ``in_progress`` too."""
    text = (_str_or_none(value) or "").strip()
    return _CAMEL_BOUNDARY.sub("_", text).lower() if text else "unknown"


@dataclass(frozen=True)
class RequestCounts:
    total: int = 0
    completed: int = 0
    failed: int = 0

    @property
    def done(self) -> int:
        return self.completed + self.failed

    @property
    def pending(self) -> int:
        return max(self.total - self.done, 0)

    def _pct(self, part: int) -> float:
        return round(100.0 * part / self.total, 1) if self.total > 0 else 0.0

    @property
    def completed_pct(self) -> float:
        return self._pct(self.completed)

    @property
    def failed_pct(self) -> float:
        return self._pct(self.failed)

    @property
    def done_pct(self) -> float:
        return self._pct(self.done)


@dataclass(frozen=True)
class BatchError:
    code: str | None = None
    message: str | None = None
    param: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class Usage:
    input_tokens: int | None = None
    cached_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    total_tokens: int | None = None


STATUS_TIMESTAMPS = (
    ("created", "created_at"),
    ("in progress", "in_progress_at"),
    ("finalizing", "finalizing_at"),
    ("completed", "completed_at"),
    ("failed", "failed_at"),
    ("cancelling", "cancelling_at"),
    ("cancelled", "cancelled_at"),
    ("expired", "expired_at"),
)


@dataclass(frozen=True)
class Batch:
    id: str
    status: str
    endpoint: str = ""
    input_file_id: str | None = None
    completion_window: str | None = None
    created_at: int | None = None
    model: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    in_progress_at: int | None = None
    expires_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    request_counts: RequestCounts | None = None
    errors: tuple[BatchError, ...] = ()
    usage: Usage | None = None
    metadata: dict[str, str] | None = None
    #: Which API this came from ("openai", "azure", "anthropic") and its own word for the status
    #: (Anthropic's ``ended``, Azure's ``Validating``), shown beside the common ``status``.
    provider: str = "openai"
    provider_status: str | None = None
    #: The provider's own request counters, as (name, count) pairs in its order (Anthropic's five).
    native_counts: tuple[tuple[str, int], ...] = ()
    #: False when the counts do not move while the batch runs (Anthropic's stay in ``processing``
    #: until the whole batch ends): no percentage, no rate, no "stalled" from them.
    counts_live: bool = True
    #: Where the results are read when the provider has no output files (Anthropic's ``results_url``).
    results_url: str | None = None
    #: The model whose prices apply when ``model`` is not one (an Azure deployment's underlying
    #: model, from the projects file); None: ``model`` itself.
    price_model: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    #: The HTTP status and ``x-request-id`` of the answer this came from (for the audit trail).
    http_status: int | None = field(default=None, compare=False, repr=False)
    request_id: str | None = field(default=None, compare=False, repr=False)

    @property
    def is_linkable(self) -> bool:
        """Whether the dashboard can put this id into its own URLs and the upstream's. An id outside
        the safe set (a "/" would even break URL reversing) is still shown, as text, never dropped:
        nothing is silently lost from a page (IDs are opaque, NOTES.md §7)."""
        return bool(ID_PATTERN.fullmatch(self.id))

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def can_cancel(self) -> bool:
        return self.status in CANCELLABLE_STATUSES

    @property
    def is_known_status(self) -> bool:
        return self.status in KNOWN_STATUSES

    @property
    def shows_provider_status(self) -> bool:
        """Whether the provider's own word differs from the common status (then both are shown)."""
        return bool(self.provider_status) and _status(self.provider_status) != self.status

    @property
    def has_results(self) -> bool:
        """Whether there is anything to read on the results page (files, or Anthropic's results_url)."""
        return bool(self.output_file_id or self.error_file_id or self.results_url)

    @property
    def provider_info(self):
        return provider_info(self.provider)

    @property
    def priced_model(self) -> str:
        return self.price_model or self.model or ""

    @property
    def processing(self) -> int:
        """Requests without an outcome yet (Anthropic's ``processing`` counter while it runs)."""
        counts = self.request_counts
        return counts.pending if counts and not self.is_terminal else 0

    @property
    def description(self) -> str | None:
        return (self.metadata or {}).get("description")

    @property
    def timeline(self) -> list[tuple[str, int]]:
        """(label, unix time) of each status timestamp the upstream gave, oldest first."""
        events = [(label, getattr(self, attr)) for label, attr in STATUS_TIMESTAMPS]
        return sorted(((label, ts) for label, ts in events if ts is not None), key=lambda item: item[1])

    @property
    def has_failures(self) -> bool:
        return bool(self.request_counts and self.request_counts.failed)

    @property
    def all_failed(self) -> bool:
        counts = self.request_counts
        return bool(counts and counts.total and counts.failed >= counts.total)

    @classmethod
    def from_api(cls, data: Any, provider: str = "openai") -> Batch:
        """An OpenAI-shaped Batch object (OpenAI, and Azure OpenAI with its looser examples)."""
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
            raise UpstreamBadResponse("The Batch API sent a batch without an id.")
        counts = data.get("request_counts")
        request_counts = None
        # Azure's REST examples show null members (NOTES.md §2.7): each reads as 0.
        if isinstance(counts, dict):
            request_counts = RequestCounts(
                total=_int_or_none(counts.get("total")) or 0,
                completed=_int_or_none(counts.get("completed")) or 0,
                failed=_int_or_none(counts.get("failed")) or 0,
            )
        errors: list[BatchError] = []
        raw_errors = data.get("errors")
        if isinstance(raw_errors, dict) and isinstance(raw_errors.get("data"), list):
            for item in raw_errors["data"]:
                if isinstance(item, dict):
                    errors.append(
                        BatchError(
                            code=_str_or_none(item.get("code")),
                            message=_str_or_none(item.get("message")),
                            param=_str_or_none(item.get("param")),
                            line=_int_or_none(item.get("line")),
                        )
                    )
        usage = None
        raw_usage = data.get("usage")
        if isinstance(raw_usage, dict):
            in_details = raw_usage.get("input_tokens_details")
            out_details = raw_usage.get("output_tokens_details")
            usage = Usage(
                input_tokens=_int_or_none(raw_usage.get("input_tokens")),
                cached_tokens=_int_or_none(in_details.get("cached_tokens")) if isinstance(in_details, dict) else None,
                output_tokens=_int_or_none(raw_usage.get("output_tokens")),
                reasoning_tokens=(
                    _int_or_none(out_details.get("reasoning_tokens")) if isinstance(out_details, dict) else None
                ),
                total_tokens=_int_or_none(raw_usage.get("total_tokens")),
            )
        metadata = data.get("metadata")
        if isinstance(metadata, dict):
            metadata = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
        else:
            metadata = None
        return cls(
            id=data["id"],
            status=_status(data.get("status")),
            provider=provider,
            provider_status=_str_or_none(data.get("status")),
            endpoint=_str_or_none(data.get("endpoint")) or "",
            input_file_id=_file_id_or_none(data.get("input_file_id")),
            completion_window=_str_or_none(data.get("completion_window")),
            created_at=_time_or_none(data.get("created_at")),
            model=_str_or_none(data.get("model")),
            output_file_id=_file_id_or_none(data.get("output_file_id")),
            error_file_id=_file_id_or_none(data.get("error_file_id")),
            in_progress_at=_time_or_none(data.get("in_progress_at")),
            expires_at=_time_or_none(data.get("expires_at")),
            finalizing_at=_time_or_none(data.get("finalizing_at")),
            completed_at=_time_or_none(data.get("completed_at")),
            failed_at=_time_or_none(data.get("failed_at")),
            expired_at=_time_or_none(data.get("expired_at")),
            cancelling_at=_time_or_none(data.get("cancelling_at")),
            cancelled_at=_time_or_none(data.get("cancelled_at")),
            request_counts=request_counts,
            errors=tuple(errors),
            usage=usage,
            metadata=metadata,
            raw=data,
        )


@dataclass(frozen=True)
class BatchPage:
    """One page of a provider's list, newest first. ``next_cursor`` is what the next page's ``after``
    is, whatever the provider calls it (OpenAI's ``after``, Anthropic's ``after_id``); the client
    that read the page sets it, so callers never need to know how a provider pages."""

    data: tuple[Batch, ...]
    has_more: bool
    first_id: str | None = None
    last_id: str | None = None
    cursor: str | None = None

    @property
    def next_cursor(self) -> str | None:
        """The cursor for the next page, None on the last. By default the id of the last item of
        ``data``, as the official OpenAI SDKs do (NOTES.md §3), not ``last_id``, which may be absent."""
        if not self.has_more or not self.data:
            return None
        return self.cursor or self.data[-1].id

    @property
    def next_after(self) -> str | None:
        return self.next_cursor

    @classmethod
    def from_openai(cls, body: Any, parse=None) -> BatchPage:
        """The OpenAI list envelope (``object``, ``data``, ``has_more``, optional ``first_id``/``last_id``)."""
        parse = parse or Batch.from_api
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise UpstreamBadResponse("The Batch API sent a list of batches in a shape the dashboard does not know.")
        return cls(
            data=tuple(parse(item) for item in body["data"]),
            has_more=body.get("has_more") is True,
            first_id=_str_or_none(body.get("first_id")),
            last_id=_str_or_none(body.get("last_id")),
        )


@dataclass(frozen=True)
class FileObject:
    id: str
    bytes: int | None = None
    created_at: int | None = None
    filename: str | None = None
    purpose: str | None = None
    status: str | None = None
    expires_at: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    http_status: int | None = field(default=None, compare=False, repr=False)
    request_id: str | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_api(cls, data: Any) -> FileObject:
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
            raise UpstreamBadResponse("The Files API sent a file without an id.")
        return cls(
            id=data["id"],
            bytes=_int_or_none(data.get("bytes")),
            created_at=_time_or_none(data.get("created_at")),
            filename=_str_or_none(data.get("filename")),
            purpose=_str_or_none(data.get("purpose")),
            status=_str_or_none(data.get("status")),
            expires_at=_time_or_none(data.get("expires_at")),
            raw=data,
        )


