"""What one request's answer means for a job: done, failed for good, or worth another try.

Pure functions over the API's output and error lines (NOTES.md §6.3, §6.6), so the salvage rules are
testable without a batch:

* an output line with a 2xx ``response`` succeeded;
* ``response.status_code`` 5xx or 429, or ``error.code == "batch_expired"``, or a request the batch
  never ran (an expired or cancelled batch leaves it out of both files) is *retriable*: it goes into a
  new chunk while the job has attempts left;
* any other 4xx (an invalid request, a content policy refusal) and any other ``error`` is final at once:
  retrying cannot fix it.

Each line of a home chunk is one byte (:attr:`~batches.jobs.models.Chunk.states`): the low two bits are
:data:`PENDING`, :data:`SUCCEEDED`, :data:`FAILED` or :data:`RETRY`; the rest counts attempts made.
"""

from __future__ import annotations

PENDING, SUCCEEDED, FAILED, RETRY = 0, 1, 2, 3
MAX_ATTEMPTS = 63  # what six bits hold

RETRIABLE_ERROR_CODES = frozenset({"batch_expired"})

NOT_RUN = {"code": "not_run", "message": "The batch ended before this request ran."}
CANCELLED = {"code": "job_cancelled", "message": "The job was cancelled before this request had a final answer."}


def state_byte(status: int, attempts: int) -> int:
    return status | (min(attempts, MAX_ATTEMPTS) << 2)


def status_of(byte: int) -> int:
    return byte & 3


def attempts_of(byte: int) -> int:
    return byte >> 2


def classify(record: dict | None) -> int:
    """SUCCEEDED, FAILED (final) or RETRY for one output/error line (None: the request never ran)."""
    if record is None:
        return RETRY
    response = record.get("response")
    status = response.get("status_code") if isinstance(response, dict) else None
    if isinstance(status, int) and not isinstance(status, bool):
        if 200 <= status < 300:
            return SUCCEEDED
        if status == 429 or status >= 500:
            return RETRY
        return FAILED
    error = record.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    if code in RETRIABLE_ERROR_CODES:
        return RETRY
    return FAILED


def decide(record: dict | None, attempt: int, max_attempts: int) -> int:
    """The line's status after ``attempt``: a retriable failure on the last attempt is final."""
    outcome = classify(record)
    if outcome == RETRY and attempt >= max_attempts:
        return FAILED
    return outcome


# Maps every state byte to its status (the low two bits), so counting is four C-level passes.
_STATUS_TABLE = bytes(value & 3 for value in range(256))


def counts(states: bytes) -> tuple[int, int, int, int]:
    """(pending, succeeded, failed, retrying) of a home chunk's state bytes."""
    statuses = bytes(states).translate(_STATUS_TABLE)
    return tuple(statuses.count(status) for status in (PENDING, SUCCEEDED, FAILED, RETRY))
