"""Rates in dollars per million tokens, and the negotiated ones of ``DASHBOARD_PRICE_OVERRIDES``
(JSON text, or the path of a ``.toml``/``.json`` file; see :mod:`batches.oversight.pricing` for the
format). A bad value is system check ``batches.E020``: the dashboard refuses to start rather than
misprice."""

from __future__ import annotations

import json
import logging
import os
import threading
import tomllib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured

from ..conf import conf

logger = logging.getLogger("batches.oversight")

MILLION = Decimal(1_000_000)
OVERRIDE_FIELDS = ("input", "cached_input", "output")


class NoPrice(Exception):
    """Why a batch or a model has no known price, as a sentence for the page."""


@dataclass(frozen=True)
class Rates:
    """Dollars per million tokens at Batch API rates."""

    model_id: str
    input: Decimal
    cached_input: Decimal
    output: Decimal
    source: str  # "override" or "genai-prices 0.2.3"
    note: str = ""

    def cost(self, input_tokens: int, cached_tokens: int, output_tokens: int) -> Decimal:
        cached = min(max(cached_tokens, 0), max(input_tokens, 0))
        uncached = max(input_tokens, 0) - cached
        return (uncached * self.input + cached * self.cached_input + max(output_tokens, 0) * self.output) / MILLION


def _decimal(value, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ImproperlyConfigured(f"DASHBOARD_PRICE_OVERRIDES: {where} must be a number of dollars per million tokens.")
    try:
        number = Decimal(str(value))
    except InvalidOperation as err:
        raise ImproperlyConfigured(f"DASHBOARD_PRICE_OVERRIDES: {where} must be a number, not {value!r}.") from err
    if not number.is_finite() or number < 0:
        raise ImproperlyConfigured(f"DASHBOARD_PRICE_OVERRIDES: {where} must be zero or more.")
    return number


def parse_overrides(raw: str) -> dict[str, Rates]:
    """``{lower-cased model key: Rates}`` from JSON text or a file path; raises ImproperlyConfigured
    with a sentence naming the model and field that is wrong."""
    raw = (raw or "").strip()
    if not raw:
        return {}
    if raw.startswith("{"):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as err:
            raise ImproperlyConfigured(f"DASHBOARD_PRICE_OVERRIDES is not valid JSON: {err}.") from err
    else:
        try:
            with open(raw, "rb") as handle:
                text = handle.read()
        except OSError as err:
            raise ImproperlyConfigured(f"DASHBOARD_PRICE_OVERRIDES={raw} cannot be read: {err.strerror or err}.") from err
        try:
            data = json.loads(text) if raw.endswith(".json") else tomllib.loads(text.decode("utf-8"))
        except (ValueError, tomllib.TOMLDecodeError) as err:
            raise ImproperlyConfigured(f"DASHBOARD_PRICE_OVERRIDES={raw} cannot be parsed: {err}.") from err
    if not isinstance(data, dict):
        raise ImproperlyConfigured("DASHBOARD_PRICE_OVERRIDES must map model names to their rates.")
    result: dict[str, Rates] = {}
    for model, table in data.items():
        where = f"model “{model}”"
        if not isinstance(table, dict):
            raise ImproperlyConfigured(f"DASHBOARD_PRICE_OVERRIDES: {where} must be a table of input, cached_input, output.")
        unknown = set(table) - set(OVERRIDE_FIELDS)
        if unknown:
            raise ImproperlyConfigured(f"DASHBOARD_PRICE_OVERRIDES: {where} has unknown field(s) {', '.join(sorted(unknown))}.")
        for required in ("input", "output"):
            if required not in table:
                raise ImproperlyConfigured(f"DASHBOARD_PRICE_OVERRIDES: {where} needs “{required}”.")
        rate_in = _decimal(table["input"], f"{where}.input")
        result[str(model).strip().lower()] = Rates(
            model_id=str(model),
            input=rate_in,
            cached_input=_decimal(table["cached_input"], f"{where}.cached_input") if "cached_input" in table else rate_in,
            output=_decimal(table["output"], f"{where}.output"),
            source="override",
            note="negotiated rate from DASHBOARD_PRICE_OVERRIDES",
        )
    return result


_lock = threading.Lock()
_overrides_cache: dict[tuple, dict[str, Rates] | ImproperlyConfigured] = {}


def _override_setting() -> str:
    return conf().price_overrides


def load_overrides() -> tuple[tuple, dict[str, Rates] | ImproperlyConfigured]:
    """The overrides and their generation (the setting and, for a file, its modification time)."""
    raw = _override_setting()
    stamp = None
    if raw and not raw.strip().startswith("{"):
        try:
            stamp = os.stat(raw.strip()).st_mtime_ns
        except OSError:
            stamp = None
    key = (raw, stamp)
    cached = _overrides_cache.get(key)
    if cached is not None:
        return key, cached
    try:
        loaded: dict[str, Rates] | ImproperlyConfigured = parse_overrides(raw)
    except ImproperlyConfigured as err:
        logger.error("%s", err)
        loaded = err
    with _lock:
        _overrides_cache.clear()
        _overrides_cache[key] = loaded
    return key, loaded


def overrides() -> dict[str, Rates]:
    loaded = load_overrides()[1]
    return {} if isinstance(loaded, ImproperlyConfigured) else loaded


@register()
def check_price_overrides(app_configs=None, **kwargs):
    """A system check (``batches.E020``): a bad override refuses to start instead of mispricing.
    Registered when this module is imported (``BatchesConfig.ready`` should import it)."""

    loaded = load_overrides()[1]
    if isinstance(loaded, ImproperlyConfigured):
        return [Error(str(loaded), hint="See docs/oversight.md, “Negotiated rates”.", id="batches.E020")]
    return []
