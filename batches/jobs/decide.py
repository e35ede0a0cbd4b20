"""The scheduler's decisions, without I/O: which waiting chunks to submit now, what a refusal or an
acceptance teaches about a model's queue, and how long to back off.

The inputs are plain values (:class:`Queue` per model, :class:`Candidate` per waiting chunk), so every
rule is unit-tested; :mod:`batches.jobs.schedule` gathers them from the database and the upstream and
carries the decisions out.

* **Budget known** (configured in ``[projects.<slug>.limits]``): a chunk is submitted while the model's
  estimated enqueued tokens (the project's unfinished batches of that model, the job's own included)
  plus the chunk's stay within the budget. ``token_limit_exceeded`` halves the budget in use (never
  below :data:`MIN_BUDGET`); each batch the API accepts adds back a tenth of the configured budget.
* **No budget configured**: additive increase, multiplicative decrease over the number of chunks in
  flight: one at first, one more per batch the API accepts, halved on ``token_limit_exceeded``.
* A chunk whose estimate does not fit the budget on its own is split in two (a single request that
  does not fit is failed with a sentence). Without a budget, a chunk refused twice while it was alone in
  the queue is split too: the unknown limit is smaller than the chunk.
* At most :data:`CREATIONS_PER_HOUR` batch creations per hour per project (NOTES.md §6.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from ..project_limits import API_CREATIONS_PER_HOUR

CREATIONS_PER_HOUR = API_CREATIONS_PER_HOUR
MIN_BUDGET = 1_000
MAX_WINDOW = 1_000
BACKOFF_MAX = timedelta(hours=1)
#: Refusals of a chunk alone in the queue (no budget configured) before it is split.
SPLIT_AFTER_LONE_REFUSALS = 2


@dataclass
class Queue:
    """One model's queue as the scheduler sees it at the start of a pass."""

    model: str
    #: the budget in use (None: learn with the window)
    budget: int | None
    window: int = 1
    in_flight_tokens: int = 0
    in_flight_chunks: int = 0


@dataclass(frozen=True)
class Candidate:
    chunk_id: int
    model: str
    tokens: int
    requests: int


@dataclass
class Plan:
    submit: list[int] = field(default_factory=list)
    #: too big for the budget on its own, and more than one request: split in two
    split: list[int] = field(default_factory=list)
    #: one request bigger than the whole budget: fail it
    too_big: list[int] = field(default_factory=list)
    #: model -> why its waiting chunks stay waiting
    held: dict[str, str] = field(default_factory=dict)
    #: the hourly creation limit stopped the pass
    rate_limited: bool = False


def plan_submissions(candidates: list[Candidate], queues: dict[str, Queue], created_last_hour: int,
                     per_hour: int = CREATIONS_PER_HOUR) -> Plan:
    """Which ``candidates`` (in priority order) to submit now. ``queues`` is updated as if they were."""
    plan = Plan()
    for candidate in candidates:
        if candidate.model in plan.held:
            continue  # first come, first served within a model: a smaller chunk does not overtake
        queue = queues[candidate.model]
        if queue.budget is not None and candidate.tokens > queue.budget:
            (plan.split if candidate.requests > 1 else plan.too_big).append(candidate.chunk_id)
            continue
        if created_last_hour + len(plan.submit) >= per_hour:
            plan.rate_limited = True
            break
        if queue.budget is not None:
            if queue.in_flight_tokens + candidate.tokens > queue.budget:
                plan.held[candidate.model] = (
                    f"{queue.in_flight_tokens:,} of {queue.budget:,} estimated tokens are queued for {candidate.model}; "
                    f"the next chunk needs {candidate.tokens:,}."
                )
                continue
        elif queue.in_flight_chunks >= queue.window:
            plan.held[candidate.model] = (
                f"{queue.in_flight_chunks} chunk(s) of {candidate.model} in flight, the most the dashboard has "
                "learned the queue takes so far."
            )
            continue
        plan.submit.append(candidate.chunk_id)
        queue.in_flight_tokens += candidate.tokens
        queue.in_flight_chunks += 1
    return plan


def after_refusal(budget: int | None, window: int) -> tuple[int | None, int]:
    """``token_limit_exceeded``: halve the budget in use (or the window)."""
    if budget is not None:
        return max(MIN_BUDGET, budget // 2), window
    return None, max(1, window // 2)


def after_acceptance(budget: int | None, window: int, configured: int | None) -> tuple[int | None, int]:
    """A batch passed validation: grow back towards the configured budget (or widen the window)."""
    if configured is not None:
        current = configured if budget is None else budget
        return min(configured, current + max(configured // 10, 1)), window
    return None, min(MAX_WINDOW, window + 1)


def backoff(hits: int, base_seconds: float) -> timedelta:
    """The wait before a refused chunk is tried again: base, 2×, 4×, … up to an hour."""
    return min(timedelta(seconds=base_seconds * 2 ** max(hits - 1, 0)), BACKOFF_MAX)


def split_after_refusal(budget: int | None, hits: int, alone: bool, requests: int) -> bool:
    """Without a budget, a chunk refused again and again while nothing else was queued is too big."""
    return budget is None and alone and requests > 1 and hits >= SPLIT_AFTER_LONE_REFUSALS
