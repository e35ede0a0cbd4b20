"""The only code that speaks HTTP to the upstream Batch and Files API.

``errors`` holds the :class:`UpstreamError` family, ``types`` the typed values and their tolerant
parsing, ``client`` the transport with its retry policy, ``registry`` one pooled client per project.
"""

from .client import (
    MAX_RETRIES,
    RETRY_BUDGET_SECONDS,
    USER_AGENT,
    BatchClient,
    FileContent,
    validate_id,
)
from .errors import (
    InvalidId,
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamBadResponse,
    UpstreamConflict,
    UpstreamError,
    UpstreamForbidden,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
    error_from_response,
    retry_after_seconds,
)
from .registry import client_for
from .types import (
    CANCELLABLE_STATUSES,
    COMPLETION_WINDOWS,
    ENDPOINTS,
    ID_PATTERN,
    KNOWN_STATUSES,
    TERMINAL_STATUSES,
    Batch,
    BatchError,
    BatchPage,
    FileObject,
    RequestCounts,
    Usage,
)

__all__ = [name for name in dir() if not name.startswith("_")]
