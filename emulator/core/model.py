"""The emulator's vocabulary and its batch record (shared by every provider shape).

A batch is kept in OpenAI's shape (``Batch.data``) whatever its provider; the Anthropic and Azure
modules render that record in their own shape when they answer.
"""

import copy

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
FILE_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
TERMINAL = ("failed", "completed", "expired", "cancelled")
CANCELLABLE = ("validating", "in_progress", "finalizing")
PROVIDERS = ("openai", "azure", "anthropic")

# Durations in emulated seconds (the clock already includes the speed factor).
VALIDATE_SECS = 2.0
FINALIZE_SECS = 2.0
CANCEL_SECS = 3.0  # every cancel requested after start-up, seeded batches included
MIN_RATE = 10.0  # requests per emulated second (created batches also finish in <= ~60 s)
WINDOW_SECS = 86400
MAX_REQUESTS = 50_000  # OpenAI (NOTES.md §6.2)
MAX_REQUESTS_AZURE = 100_000  # provider-specs NOTES.md §2.4 (too_many_tasks)
MAX_REQUESTS_ANTHROPIC = 100_000  # provider-specs NOTES.md §1.4
SYNC_VALIDATE_BYTES = 5 * 1024 * 1024  # bigger input files are validated in a background thread
THIRTY_DAYS = 30 * 86400
FAIL_PERCENT = 5  # default share of requests that fail, chosen by custom_id hash

BATCH_FIELDS = (
    "id", "object", "endpoint", "model", "errors", "input_file_id", "completion_window", "status",
    "output_file_id", "error_file_id", "created_at", "in_progress_at", "expires_at", "finalizing_at",
    "completed_at", "failed_at", "expired_at", "cancelling_at", "cancelled_at", "request_counts",
    "usage", "metadata",
)
TIME_FIELDS = ("created_at", "in_progress_at", "expires_at", "finalizing_at", "completed_at", "failed_at",
               "expired_at", "cancelling_at", "cancelled_at")


def copy_data(d):
    """A copy of a batch dict that shares nothing mutable (faster than deepcopy for list pages)."""
    out = dict(d)
    for k, v in d.items():
        if isinstance(v, (dict, list)):
            if k in ("request_counts", "metadata"):
                out[k] = dict(v)
            elif k == "usage":
                out[k] = {uk: dict(uv) if isinstance(uv, dict) else uv for uk, uv in v.items()}
            else:
                out[k] = copy.deepcopy(v)
    return out


def zero_usage():
    return {
        "input_tokens": 0,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 0,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 0,
    }


class Batch:
    """A batch: ``data`` is the public (OpenAI-shaped) object; the rest drives the lifecycle."""

    is_row = False

    def __init__(self, data, project, provider="openai"):
        self.data = data
        self.project = project
        self.provider = provider
        self.key = None  # (created_at in the seed epoch, id): its place in the project's index
        self.static = False
        self.created_t = float(data["created_at"])
        self.validate_secs = 0.0 if provider == "anthropic" else VALIDATE_SECS  # Anthropic has no validating
        self.finalize_secs = 0.0 if provider == "anthropic" else FINALIZE_SECS  # nor finalizing phase
        self.cancel_secs = CANCEL_SECS
        self.rate = None  # None = derive from total
        self.forced_errors = None  # batch-level errors to fail with at validation
        self.forced_model = None
        self.legacy = False  # no model/usage (pre Sept 2025 batches)
        self.validation = None  # result dict once validated
        self.deciding = False  # its queue check is under way
        self.seq = 0  # creation order (ids are random; batches created in one instant are ordered by this)
        self.validating_thread = None
        self.output_expires_secs = None
        self.expires = True  # Azure may run past its window (provider-specs NOTES.md §2.5)
        self.expire_t = None  # when it expires, if not at created + 24 h
        self.done = 0  # processed requests, in processing order
        self.t0 = None  # processing epoch
        self.base = 0  # done at t0
        self.cancel_t = None
        self.cancel_until = None
        self.finalize_t = None

    @property
    def order(self):
        return self.created_t, self.seq

    def clone(self, delta=0):
        """An independent copy with every timestamp moved by ``delta`` seconds (the parsed input is shared)."""
        c = copy.copy(self)
        c.data = copy_data(self.data)
        c.validating_thread = None
        if delta:
            for k in TIME_FIELDS:
                if c.data.get(k) is not None:
                    c.data[k] += delta
            for k in ("created_t", "t0", "cancel_t", "cancel_until", "finalize_t", "expire_t"):
                if getattr(c, k) is not None:
                    setattr(c, k, getattr(c, k) + delta)
        return c
