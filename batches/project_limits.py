"""A project's job limits: the ``[projects.<slug>.limits]`` table of the projects file.

Ground floor: this module imports nothing of the dashboard but ``project_tables.py``, so ``batches/projects.py`` can call
:func:`parse_limits` while it reads the file (a bad value is then a system check error naming the
project and the field, like every other field)::

    [projects.prod.limits]
    max_requests_per_batch = 50000        # default: the provider's limit (OpenAI 50,000; Azure 100,000)
    max_bytes_per_batch = 209715200       # default: the provider's limit (200 MB)
    queue_tokens = { "gpt-4o-mini" = 2000000, "gpt-4.1" = 900000 }   # enqueued-token budget per model
    default_queue_tokens = 1000000        # optional: models not listed; absent = learn (AIMD)

The API's own limits (NOTES.md §6.2): at most 50,000 requests and 200 MB per batch, 2,000 batch
creations per hour, and an enqueued-token limit per model that is not published by any endpoint. Other
providers have other per-batch limits (Azure OpenAI: 100,000 requests, provider-specs/NOTES.md §2.4):
the caller passes them in from ``batches/upstream/providers.py``; they are the defaults and the ceiling.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

from .project_tables import check_table

API_MAX_REQUESTS = 50_000  # NOTES.md §6.2
API_MAX_BYTES = 200 * 1024 * 1024  # NOTES.md §6.2
API_CREATIONS_PER_HOUR = 2_000  # NOTES.md §6.2
KNOWN_FIELDS = frozenset({"max_requests_per_batch", "max_bytes_per_batch", "queue_tokens", "default_queue_tokens"})
# The smallest budgets that make sense: one request, one line of JSON.
MIN_BYTES = 1024
MIN_TOKENS = 1_000


@dataclass(frozen=True)
class JobLimits:
    max_requests_per_batch: int = API_MAX_REQUESTS
    max_bytes_per_batch: int = API_MAX_BYTES
    #: model -> enqueued-token budget (estimated input tokens of unfinished batches)
    queue_tokens: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    #: the budget of models not in ``queue_tokens``; None: learn it (additive increase, halve on refusal)
    default_queue_tokens: int | None = None

    def budget_for(self, model: str) -> int | None:
        """The configured enqueued-token budget of ``model``, or None when the dashboard must learn it."""
        return self.queue_tokens.get(model, self.default_queue_tokens)


def _positive_int(value, where: str, problems: list[str], *, low: int, high: int | None = None) -> int | None:
    if not isinstance(value, int) or isinstance(value, bool):
        problems.append(f"{where} must be a whole number, not {type(value).__name__} {value!r}.")
        return None
    if value < low or (high is not None and value > high):
        upper = f" and at most {high:,}" if high is not None else ""
        problems.append(f"{where} must be at least {low:,}{upper}; it is {value:,}.")
        return None
    return value


def parse_limits(table, where: str, problems: list[str], *, max_requests: int = API_MAX_REQUESTS,
                 max_bytes: int = API_MAX_BYTES) -> JobLimits:
    """The limits of one project from its ``limits`` table (None: the defaults). ``max_requests`` and
    ``max_bytes`` are the provider's hard limits per batch: the defaults, and more is a problem. Every
    problem is appended to ``problems`` as a sentence that names ``where`` (the project) and the field."""
    defaults = JobLimits(max_requests_per_batch=max_requests, max_bytes_per_batch=max_bytes)
    if table is None:
        return defaults
    where = f"{where}: limits"
    if not check_table(table, where, KNOWN_FIELDS, problems, written="[projects.<slug>.limits]"):
        return defaults
    values: dict = {"max_requests_per_batch": max_requests, "max_bytes_per_batch": max_bytes}
    if "max_requests_per_batch" in table:
        values["max_requests_per_batch"] = _positive_int(
            table["max_requests_per_batch"], f"{where}.max_requests_per_batch", problems, low=1, high=max_requests
        )
    if "max_bytes_per_batch" in table:
        values["max_bytes_per_batch"] = _positive_int(
            table["max_bytes_per_batch"], f"{where}.max_bytes_per_batch", problems, low=MIN_BYTES, high=max_bytes
        )
    if "default_queue_tokens" in table:
        values["default_queue_tokens"] = _positive_int(
            table["default_queue_tokens"], f"{where}.default_queue_tokens", problems, low=MIN_TOKENS
        )
    if "queue_tokens" in table:
        budgets = table["queue_tokens"]
        if not isinstance(budgets, dict):
            problems.append(f'{where}.queue_tokens must be a table of model = tokens, e.g. {{ "gpt-4o-mini" = 2000000 }}.')
        else:
            parsed = {}
            for model, tokens in budgets.items():
                if not model.strip():
                    problems.append(f"{where}.queue_tokens has an empty model name.")
                    continue
                value = _positive_int(tokens, f"{where}.queue_tokens.{model}", problems, low=MIN_TOKENS)
                if value is not None:
                    parsed[model] = value
            values["queue_tokens"] = MappingProxyType(parsed)
    return JobLimits(**{key: value for key, value in values.items() if value is not None})
