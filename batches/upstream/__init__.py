"""The only code that speaks HTTP to a provider's batch API.

``errors`` holds the :class:`UpstreamError` family, ``types`` the typed values and their tolerant
parsing, ``client`` the transport every provider shares (retries, timeouts, error mapping), ``openai``,
``azure`` and ``anthropic`` one client each (paths, headers, parsing), ``lines`` result lines in one
shape, ``providers`` what differs between providers as data, ``registry`` one pooled client per project.
"""

from .anthropic import AnthropicClient
from .azure import AzureClient
from .client import (
    MAX_RETRIES,
    RETRY_BUDGET_SECONDS,
    USER_AGENT,
    BaseClient,
    FileContent,
    validate_id,
)
from .lines import ResultRecords, UsageTally
from .openai import BatchClient, OpenAIClient
from .providers import DEFAULT_PROVIDER, PROVIDER_NAMES, PROVIDERS, ProviderInfo, provider_info
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
from .registry import batch_from_raw, client_for
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
