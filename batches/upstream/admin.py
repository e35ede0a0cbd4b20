"""The OpenAI Admin API client: billed costs and batch token usage of the organization.

Two endpoints, as the official SDK describes them (``openai`` 3.51,
``resources/admin/organization/usage.py``, types in ``types/admin/organization/usage_costs_*`` and
``usage_completions_*``), both with an **admin key** (``security={"admin_api_key_auth": True}``: a
``Bearer`` admin key; a project key is refused):

* ``GET /v1/organization/costs``: daily buckets (``bucket_width=1d``, the only width), each with
  ``organization.costs.result`` items carrying ``amount.value`` / ``amount.currency`` and, grouped by
  ``project_id`` and ``line_item``, those two fields (``limit`` 1–180 buckets per page).
* ``GET /v1/organization/usage/completions``: daily buckets of ``organization.usage.completions.result``
  items (``input_tokens``, ``input_cached_tokens``, ``output_tokens``, ``num_model_requests``), here with
  ``batch=true`` and grouped by ``project_id`` and ``model`` (``limit`` at most 31 daily buckets).

Both answer a ``page`` object (``data``, ``has_more``, ``next_page``); the next request passes
``page=<next_page>``. Arrays go as ``group_by[]=…`` (the SDK's ``array_format="brackets"``).

The transport is the Batch API client's (:class:`~batches.upstream.openai.OpenAIClient`, on the shared transport of ``client.py``): one pooled
``httpx.Client`` per process, explicit timeouts, the read retry policy, the ``UpstreamError`` family
and log lines with status and ``x-request-id`` only. The admin key is in no log line, no error
message (an upstream message that quotes it is scrubbed) and no ``repr``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from ..conf import conf
from .openai import OpenAIClient
from .errors import UpstreamAuthError, UpstreamBadResponse, UpstreamError, UpstreamForbidden

BUCKET_WIDTH = "1d"
COSTS_PAGE_LIMIT = 31
USAGE_PAGE_LIMIT = 31
#: More pages than this for one range is not an answer the dashboard can trust (a cursor loop).
MAX_PAGES = 60
ADMIN_LABEL = "organization"


@dataclass(frozen=True)
class CostResult:
    project_id: str | None
    line_item: str | None
    amount: Decimal
    currency: str
    quantity: float | None = None
    quantity_unit: str | None = None


@dataclass(frozen=True)
class UsageResult:
    project_id: str | None
    model: str | None
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    requests: int


@dataclass(frozen=True)
class Bucket:
    start_time: int
    end_time: int
    results: tuple


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _cost(item: dict) -> CostResult | None:
    amount = item.get("amount") if isinstance(item.get("amount"), dict) else {}
    value = amount.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    quantity = item.get("quantity")
    return CostResult(
        project_id=_str(item.get("project_id")),
        line_item=_str(item.get("line_item")),
        amount=number,
        currency=(_str(amount.get("currency")) or "usd").lower(),
        quantity=float(quantity) if isinstance(quantity, (int, float)) and not isinstance(quantity, bool) else None,
        quantity_unit=_str(item.get("quantity_unit")),
    )


def _usage(item: dict) -> UsageResult:
    return UsageResult(
        project_id=_str(item.get("project_id")),
        model=_str(item.get("model")),
        input_tokens=_int(item.get("input_tokens")),
        cached_tokens=_int(item.get("input_cached_tokens")),
        output_tokens=_int(item.get("output_tokens")),
        requests=_int(item.get("num_model_requests")),
    )


def _page(body: Any, result_object: str, parse) -> tuple[list[Bucket], str | None]:
    """The buckets of one page (results of other ``object`` types are skipped, as new ones appear)
    and the next page's cursor, or None on the last page."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise UpstreamBadResponse("The Admin API sent a page in a shape the dashboard does not know.")
    buckets = []
    for raw in body["data"]:
        if not isinstance(raw, dict) or not isinstance(raw.get("start_time"), int) or not isinstance(raw.get("results"), list):
            raise UpstreamBadResponse("The Admin API sent a bucket without a start time or results.")
        results = [parse(item) for item in raw["results"] if isinstance(item, dict) and item.get("object") == result_object]
        buckets.append(Bucket(raw["start_time"], _int(raw.get("end_time")) or raw["start_time"] + 86400,
                              tuple(r for r in results if r is not None)))
    cursor = _str(body.get("next_page"))
    if body.get("has_more") is True and not cursor:
        raise UpstreamBadResponse("The Admin API said there is more but gave no next page.")
    return buckets, cursor if body.get("has_more") is True else None


class AdminClient(OpenAIClient):
    """Typed, paged access to the organization's costs and usage with an admin key."""

    def __init__(self, *, admin_key: str, **kwargs: Any) -> None:
        super().__init__(api_key=admin_key, label=ADMIN_LABEL, **kwargs)
        self._secret = admin_key
        #: Upstream calls made by this client (the billing pass reports them).
        self.calls = 0

    def _send(self, method: str, path: str, **kwargs: Any):
        self.calls += 1
        try:
            return super()._send(method, path, **kwargs)
        except UpstreamError as err:
            # Chained to what caused the original (a transport error), not to it: its message may
            # quote the key, and a traceback would print it.
            raise self._admin_error(err) from err.__cause__

    def _admin_error(self, err: UpstreamError) -> UpstreamError:
        """The same error, worded for the Admin API, with the admin key scrubbed from anything the
        upstream said (some servers quote the key they refused)."""
        if isinstance(err, UpstreamAuthError):
            message = "The Admin API rejected the organization's admin key. An administrator needs to check [organization] admin_key_env."
        elif isinstance(err, UpstreamForbidden):
            message = "The Admin API refused the organization's key: it is not an admin key, or lacks the usage permission."
        else:
            message = err.message.replace("The Batch API", "The Admin API")
        upstream_message = err.upstream_message
        if self._secret:
            message = message.replace(self._secret, "[admin key]")
            upstream_message = upstream_message.replace(self._secret, "[admin key]") if upstream_message else upstream_message
        return type(err)(
            message, status_code=err.status_code, request_id=err.request_id, code=err.code, param=err.param,
            retry_after=err.retry_after, upstream_message=upstream_message,
        )

    def _pages(self, path: str, what: str, params: dict, result_object: str, parse) -> list[Bucket]:
        buckets: list[Bucket] = []
        cursor = None
        for _ in range(MAX_PAGES):
            query = dict(params, page=cursor) if cursor else params
            page, cursor = self._get_json(path, what, lambda body: _page(body, result_object, parse), params=query)
            buckets.extend(page)
            if cursor is None:
                return buckets
        raise UpstreamBadResponse(f"The Admin API kept paging the {what} past {MAX_PAGES} pages; the dashboard stopped there and kept nothing.")

    @staticmethod
    def _params(start_time: int, end_time: int | None, project_ids: Iterable[str], group_by: list[str], limit: int) -> dict:
        params: dict[str, Any] = {"start_time": int(start_time), "bucket_width": BUCKET_WIDTH, "group_by[]": group_by, "limit": limit}
        if end_time is not None:
            params["end_time"] = int(end_time)
        ids = sorted(set(project_ids))
        if ids:
            params["project_ids[]"] = ids
        return params

    def costs(self, *, start_time: int, end_time: int | None = None, project_ids: Iterable[str] = ()) -> list[Bucket]:
        """Every daily bucket of billed costs from ``start_time`` (unix seconds, inclusive) to ``end_time``
        (exclusive), grouped by project and line item, following every page."""
        params = self._params(start_time, end_time, project_ids, ["project_id", "line_item"], COSTS_PAGE_LIMIT)
        return self._pages("organization/costs", "billed costs", params, "organization.costs.result", _cost)

    def batch_usage(self, *, start_time: int, end_time: int | None = None, project_ids: Iterable[str] = ()) -> list[Bucket]:
        """Every daily bucket of *batch* completions usage, grouped by project and model."""
        params = self._params(start_time, end_time, project_ids, ["project_id", "model"], USAGE_PAGE_LIMIT)
        params["batch"] = "true"
        return self._pages("organization/usage/completions", "batch usage", params, "organization.usage.completions.result", _usage)


_lock = threading.Lock()
_clients: dict[tuple, AdminClient] = {}


def admin_client_for(organization) -> AdminClient:
    """The process-wide Admin API client of the configured ``[organization]``
    (:class:`batches.project_money.Organization`), rebuilt only when its configuration changes."""
    settings = conf()
    config = (organization.base_url, organization.admin_key, settings.openai_timeout, settings.openai_connect_timeout)
    with _lock:
        client = _clients.get(config)
        if client is None:
            for old in _clients.values():
                old.close()
            _clients.clear()
            client = _clients[config] = AdminClient(
                base_url=organization.base_url, admin_key=organization.admin_key,
                timeout=settings.openai_timeout, connect_timeout=settings.openai_connect_timeout,
            )
        return client
