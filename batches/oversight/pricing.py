"""What batches cost, at Batch API rates, from the pinned ``genai-prices`` package or from per-model
overrides for negotiated rates.

Every figure is an estimate: OpenAI's usage dashboard and invoice are the bill. A batch without a known
price (no usage reported, no model, a model the price data does not know) is "no price" with the reason,
never $0, and totals say how many batches they leave out.

Arithmetic, per model, in dollars per million tokens (OpenAI's ``input_tokens`` *includes* the cached
ones, ``output_tokens`` includes reasoning tokens)::

    (input - cached) × input rate + cached × cached-input rate + output × output rate

The rates come from genai-prices' batch price variant (``price_context={"processing": "batch"}``),
resolved against today's price table. A model with long-context tiers is priced at its base tier: a
batch's usage is a sum over its requests, and the tier is chosen per request, which the sum no longer
tells (the price says so in its note). Because the formula is linear, a total over many batches is
computed once per model from token sums aggregated in SQL.

``DASHBOARD_PRICE_OVERRIDES`` (JSON text, or the path of a ``.toml``/``.json`` file) replaces the rates
for the models it names, in dollars per million tokens at the rate you actually pay for batches::

    {"gpt-4o-mini": {"input": 0.07, "cached_input": 0.035, "output": 0.28}, "ft:gpt-4o-mini*": {...}}

A key matches a batch's model exactly (case-insensitive), or the genai-prices model it resolves to
(``gpt-4o-mini`` covers ``gpt-4o-mini-2024-07-18``), or, ending in ``*``, as a prefix.
``cached_input`` is optional and defaults to ``input``.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from types import SimpleNamespace

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Count, Q, QuerySet, Sum
from django.utils.formats import number_format

from ..models import BatchRecord
from ..upstream import Usage, provider_info
from .rates import NoPrice, Rates, load_overrides, overrides

logger = logging.getLogger("batches.oversight")

PROVIDER_ID = "openai"
PRICE_CONTEXT = {"processing": "batch"}
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Price:
    """One batch's price, or why it has none (``amount`` None and ``reason`` a sentence)."""

    amount: Decimal | None
    reason: str = ""
    rates: Rates | None = None

    @property
    def known(self) -> bool:
        return self.amount is not None

    @property
    def display(self) -> str:
        return money(self.amount) if self.amount is not None else "no price"


@dataclass
class CostTotal:
    """A total over many batches: "$412.18 for 1,240 batches; 14 without a known price"."""

    amount: Decimal = Decimal(0)
    batches: int = 0
    unpriced: int = 0
    #: reason sentence -> number of batches it leaves out
    reasons: dict[str, int] = field(default_factory=dict)
    #: model -> (amount or None, batches)
    by_model: dict[str, tuple[Decimal | None, int]] = field(default_factory=dict)

    @property
    def priced(self) -> int:
        return self.batches - self.unpriced

    @property
    def sentence(self) -> str:
        noun = "batch" if self.batches == 1 else "batches"
        text = f"{money(self.amount)} for {number_format(self.batches, force_grouping=True)} {noun}"
        if self.unpriced:
            text += f"; {number_format(self.unpriced, force_grouping=True)} without a known price"
        return text

    def add_model(self, model: str, amount: Decimal | None, batches: int) -> None:
        """One group's share of a model (a model may come in several groups: one per provider)."""
        known, count = self.by_model.get(model, (None, 0))
        if amount is not None:
            known = (known or Decimal(0)) + amount
        self.by_model[model] = (known, count + batches)

    def _leave_out(self, reason: str, count: int) -> None:
        self.unpriced += count
        self.reasons[reason] = self.reasons.get(reason, 0) + count


def money(amount: Decimal | None) -> str:
    """$412.18; amounts under a cent show more digits so a tiny batch does not read as $0.00."""
    if amount is None:
        return "no price"
    if 0 < amount < CENT:
        return f"${amount.quantize(Decimal('0.000001'), rounding=ROUND_HALF_UP).normalize():f}"
    rounded = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    return "$" + number_format(rounded, decimal_pos=2, force_grouping=True)


# -- price data ----------------------------------------------------------------------------------


@functools.cache
def _genai() -> SimpleNamespace:
    """The genai-prices package, imported on first use (it takes ~0.2 s, which a process that never
    prices anything, such as the sync, should not pay)."""
    from genai_prices import __version__, data_snapshot, types

    return SimpleNamespace(version=__version__, snapshot=data_snapshot.get_snapshot, TieredPrices=types.TieredPrices)


def price_data_version() -> str:
    return f"genai-prices {_genai().version}"


def price_data_label() -> str:
    """What the page says about where prices come from. The package carries no data date of its own:
    its pinned version is the date (its prices are those of that release, bundled, never fetched)."""
    label = f"Batch API rates from {price_data_version()} (bundled price data of that release)"
    if overrides():
        label += f"; negotiated rates for {len(overrides())} model(s) from DASHBOARD_PRICE_OVERRIDES"
    return label


def _genai_model(model: str, prices_id: str = PROVIDER_ID):
    try:
        _, info = _genai().snapshot().find_provider_model(model, None, prices_id, None)
    except LookupError:
        return None
    return info


def _base(value) -> Decimal | None:
    if isinstance(value, _genai().TieredPrices):
        return value.base
    return value


def _genai_rates(model: str, info) -> Rates:
    now = datetime.now(tz=UTC)
    prices = info.get_prices(now, PRICE_CONTEXT)
    if prices == info.get_prices(now, None):
        # Without a batch variant genai-prices returns the standard price for the batch context
        # (provider-specs/NOTES.md §1.8: Opus 4.1, Sonnet 4.0, Claude 3.x): never shown as a batch price.
        raise NoPrice(
            f"{price_data_version()} has no batch price for “{model}”, only its standard price, "
            "which the dashboard does not present as a batch price; add its batch rates to DASHBOARD_PRICE_OVERRIDES."
        )
    rate_in = _base(getattr(prices, "input_mtok", None))
    rate_out = _base(getattr(prices, "output_mtok", None))
    if rate_in is None and rate_out is None:
        raise NoPrice(f"{price_data_version()} has no per-token price for “{model}”.")
    cached = _base(getattr(prices, "cache_read_mtok", None))
    tiered = any(
        isinstance(getattr(prices, key, None), _genai().TieredPrices) for key in ("input_mtok", "cache_read_mtok", "output_mtok")
    )
    return Rates(
        model_id=info.id,
        input=rate_in or Decimal(0),
        cached_input=cached if cached is not None else (rate_in or Decimal(0)),
        output=rate_out or Decimal(0),
        source=price_data_version(),
        note="priced at the base tier: long-context tiers apply per request, which a batch's summed usage no longer shows"
        if tiered
        else "",
    )


#: Resolved rates, keyed by the overrides' generation too: a changed overrides file is a new key.
_rates_cache: dict[tuple, Rates | NoPrice] = {}


def rates_for(model: str, provider: str = "") -> Rates:
    """Batch rates for ``model`` of ``provider``'s batches (default OpenAI), an override first; raises
    :class:`NoPrice` with the reason."""
    model = (model or "").strip()
    if not model:
        raise NoPrice("The batch names no model, so its price cannot be looked up.")
    generation, loaded = load_overrides()
    if isinstance(loaded, ImproperlyConfigured):
        raise NoPrice(f"Prices are off until DASHBOARD_PRICE_OVERRIDES is fixed: {loaded}")
    info = provider_info(provider)
    key = (generation, info.prices_id, model.lower())
    cached = _rates_cache.get(key)
    if cached is None:
        cached = _resolve(model, loaded, info.prices_id)
        if len(_rates_cache) > 2000:
            _rates_cache.clear()
        _rates_cache[key] = cached
    if isinstance(cached, NoPrice):
        raise cached
    return cached


def _resolve(model: str, loaded: dict[str, Rates], prices_id: str = PROVIDER_ID) -> Rates | NoPrice:
    lowered = model.lower()
    if lowered in loaded:
        return loaded[lowered]
    info = _genai_model(model, prices_id)
    if info is not None and info.id.lower() in loaded:
        return loaded[info.id.lower()]
    prefixes = sorted((key for key in loaded if key.endswith("*")), key=len, reverse=True)
    for key in prefixes:
        if lowered.startswith(key[:-1]):
            return loaded[key]
    if info is None:
        return NoPrice(
            f"{price_data_version()} does not know the model “{model}”; "
            "add its rates to DASHBOARD_PRICE_OVERRIDES to price it."
        )
    try:
        return _genai_rates(model, info)
    except NoPrice as err:
        return err


# -- prices --------------------------------------------------------------------------------------

NO_USAGE = "The Batch API reported no token usage for this batch (yet), so there is nothing to price."


def price_usage(model: str, input_tokens: int | None, cached_tokens: int | None, output_tokens: int | None) -> Price:
    if input_tokens is None and output_tokens is None:
        return Price(None, NO_USAGE)
    try:
        rates = rates_for(model)
    except NoPrice as err:
        return Price(None, str(err))
    return Price(rates.cost(input_tokens or 0, cached_tokens or 0, output_tokens or 0), rates=rates)


def batch_tokens(batch) -> tuple[int | None, int | None, int | None]:
    """(input, cached, output) of an upstream ``Batch`` or an index ``BatchRecord``."""
    usage = getattr(batch, "usage", None)
    if usage is not None and hasattr(usage, "input_tokens"):
        return usage.input_tokens, usage.cached_tokens, usage.output_tokens
    if hasattr(batch, "input_tokens"):
        return batch.input_tokens, batch.cached_tokens, batch.output_tokens
    return None, None, None


def pricing_model(batch) -> tuple[str, str] | NoPrice:
    """(model to price, provider) of a batch, or why it has none: an Azure batch names a deployment,
    priced only when the projects file says which model it serves."""
    provider = getattr(batch, "provider", "") or ""
    model = getattr(batch, "model", "") or ""
    price_model = getattr(batch, "price_model", "") or ""
    if provider_info(provider).model_is_deployment and model and not price_model:
        return NoPrice(
            f"“{model}” is a deployment whose model the projects file does not name "
            f'(deployments = {{{model} = "gpt-…"}}), so it has no price.'
        )
    return price_model or model, provider


def priced(price: Price, provider: str) -> Price:
    """A known price labelled with what it is for this provider (Azure: OpenAI's rates)."""
    note = provider_info(provider).price_note
    if not price.known or not note or price.rates is None:
        return price
    return Price(price.amount, rates=replace(price.rates, note="; ".join(filter(None, (price.rates.note, note)))))


def batch_price(batch) -> Price:
    """The price of an upstream :class:`~batches.upstream.Batch` or an index ``BatchRecord``."""
    tokens = batch_tokens(batch)
    if tokens[0] is None and tokens[2] is None:
        return Price(None, no_usage_reason(getattr(batch, "provider", "")))
    target = pricing_model(batch)
    if isinstance(target, NoPrice):
        return Price(None, str(target))
    model, provider = target
    try:
        rates = rates_for(model, provider)
    except NoPrice as err:
        return Price(None, str(err))
    return priced(Price(rates.cost(tokens[0] or 0, tokens[1] or 0, tokens[2] or 0), rates=rates), provider)


def with_kept_usage(project: str, batch):
    """An upstream ``Batch`` whose provider reports no usage, with the usage the index kept from its
    result lines (``index.store.record_result_usage``), when there is one; else ``batch`` itself."""
    if getattr(batch, "usage", None) is not None or provider_info(getattr(batch, "provider", "")).reports_usage:
        return batch
    record = (
        BatchRecord.objects.filter(project=project, batch_id=batch.id, input_tokens__isnull=False)
        .only("model", "input_tokens", "cached_tokens", "output_tokens", "total_tokens")
        .first()
    )
    if record is None:
        return batch
    usage = Usage(
        input_tokens=record.input_tokens, cached_tokens=record.cached_tokens,
        output_tokens=record.output_tokens, total_tokens=record.total_tokens,
    )
    return replace(batch, usage=usage, model=batch.model or record.model or None)


def no_usage_reason(provider: str) -> str:
    if provider_info(provider).reports_usage:
        return NO_USAGE
    return (
        f"{provider_info(provider).label}'s batch reports no token usage: it is summed from the result lines "
        "once the batch has ended and its results page has been opened."
    )


def has_usage_q() -> Q:
    return Q(input_tokens__isnull=False) | Q(output_tokens__isnull=False)


def usage_by_model(queryset: QuerySet) -> QuerySet:
    """Token sums per model of ``queryset`` (BatchRecord rows): one grouped SQL query."""
    return (
        queryset.order_by()
        .values("model", "provider", "price_model")
        .annotate(
            batches=Count("id"),
            with_usage=Count("id", filter=has_usage_q()),
            input=Sum("input_tokens"),
            cached=Sum("cached_tokens"),
            output=Sum("output_tokens"),
        )
    )


def price_total(queryset: QuerySet) -> CostTotal:
    """The cost of every batch in ``queryset`` (BatchRecord rows): tokens are summed per model in one
    SQL query, then each model is priced once."""
    return total_of(usage_by_model(queryset))


def total_of(rows) -> CostTotal:
    """A :class:`CostTotal` from the rows of :func:`usage_by_model`."""
    total = CostTotal()
    for row in rows:
        model = row["model"] or ""
        provider = row.get("provider") or ""
        total.batches += row["batches"]
        missing = row["batches"] - row["with_usage"]
        if missing:
            total._leave_out(no_usage_reason(provider), missing)
        if not row["with_usage"]:
            total.add_model(model, None, row["batches"])
            continue
        try:
            target = pricing_model(SimpleNamespace(**row))
            if isinstance(target, NoPrice):
                raise target
            rates = rates_for(*target)
        except NoPrice as err:
            total._leave_out(str(err), row["with_usage"])
            total.add_model(model, None, row["batches"])
            continue
        amount = rates.cost(row["input"] or 0, row["cached"] or 0, row["output"] or 0)
        total.amount += amount
        total.add_model(model, amount, row["batches"])
    return total
