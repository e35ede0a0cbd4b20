"""What differs between the providers, as data: the one place pages, prices, the sync and the JSONL
check look a provider up, so nothing outside ``batches/upstream/`` asks "is this Anthropic?".

Facts from shared/openai-spec/NOTES.md and shared/provider-specs/NOTES.md (section numbers below).
"""

from __future__ import annotations

from dataclasses import dataclass, field

MB = 1024 * 1024


@dataclass(frozen=True)
class ProviderInfo:
    name: str
    label: str
    #: The genai-prices provider whose batch prices apply.
    prices_id: str
    #: What a price of this provider's batch is, when it is not simply "Batch API rates".
    price_note: str
    #: Whether the provider sends signed webhooks for batch events.
    webhooks: bool
    #: Whether the request counts move while a batch runs.
    counts_live: bool
    #: Which JSONL line shape create takes: "openai" ({custom_id, method, url, body}) or "anthropic".
    line_shape: str
    max_requests: int
    max_bytes: int
    example_line: str
    #: Where a batch's results come from, in words, for the batch page.
    results_from: str
    #: Whether a batch's ``model`` is a deployment name (priced only through the projects file's map).
    model_is_deployment: bool = False
    #: Whether batches are made from uploaded files and have output/error files, an endpoint, a
    #: completion window and metadata (False: the requests go inline, Anthropic).
    files: bool = True
    #: Whether the batch object reports its token usage (Anthropic's never does: the lines are summed).
    reports_usage: bool = True
    #: Sentences for common statuses that mean something else with this provider.
    status_hints: dict[str, str] = field(default_factory=dict)
    # -- the projects file (batches/projects.py checks these) --
    #: The base URL when the file gives none; None: the OPENAI_BASE_URL setting; "": required.
    default_base_url: str | None = None
    #: What ``api_version`` sets ("" when the provider takes none).
    api_version_is: str = ""
    #: The base URL's ending that speaks without an ``api_version`` (and may not be used with one).
    unversioned_suffix: str = ""
    #: Whether the OpenAI-Organization / OpenAI-Project headers (``organization``, ``project``) apply.
    openai_headers: bool = True


OPENAI_EXAMPLE = (
    '{"custom_id": "request-1", "method": "POST", "url": "/v1/chat/completions", '
    '"body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]}}'
)

PROVIDERS = {
    "openai": ProviderInfo(
        name="openai",
        label="OpenAI",
        prices_id="openai",
        price_note="",
        webhooks=True,
        counts_live=True,
        line_shape="openai",
        max_requests=50_000,  # openai-spec/NOTES.md §6.2
        max_bytes=200 * MB,
        example_line=OPENAI_EXAMPLE,
        results_from="the output and error files",
    ),
    "azure": ProviderInfo(
        name="azure",
        label="Azure OpenAI",
        prices_id="openai",
        # genai-prices has no Azure batch prices; Azure says "50% less than global standard" (§2.4, "Could not verify").
        price_note="at OpenAI's batch rates for the deployment's model (Azure's own prices are not in the price data)",
        webhooks=True,  # §2.8: the same signed webhooks as OpenAI
        counts_live=True,
        line_shape="openai",
        max_requests=100_000,  # provider-specs/NOTES.md §2.4
        max_bytes=200 * MB,
        example_line=OPENAI_EXAMPLE.replace("gpt-4o-mini", "my-gpt-4o-mini-deployment"),
        results_from="the output and error files",
        model_is_deployment=True,
        default_base_url="",
        api_version_is="the api-version of the versioned /openai/… paths",
        unversioned_suffix="/openai/v1",
    ),
    "anthropic": ProviderInfo(
        name="anthropic",
        label="Anthropic",
        prices_id="anthropic",
        price_note="summed from the usage of the batch's result lines (the Message Batch reports none)",
        webhooks=False,  # §1.10: no webhook events for batches
        counts_live=False,  # §1.3: counts stay in processing until the whole batch has ended
        line_shape="anthropic",
        max_requests=100_000,  # §1.4
        max_bytes=256 * MB,
        example_line=(
            '{"custom_id": "request-1", "params": {"model": "claude-sonnet-4-6", "max_tokens": 1024, '
            '"messages": [{"role": "user", "content": "Hello"}]}}'
        ),
        results_from="the batch's results_url (one JSONL file, in any order)",
        files=False,
        reports_usage=False,
        default_base_url="https://api.anthropic.com",
        api_version_is="the anthropic-version header",
        openai_headers=False,
        status_hints={
            "in_progress": "The batch is running; Anthropic reports its request counts only when the whole batch has ended.",
            # §1.6: no published bound on canceling; requests already running finish.
            "cancelling": "Cancel requested (Anthropic: canceling); requests already running finish first, "
            "which has no published bound. The batch then ends.",
            "cancelled": "The batch was cancelled (Anthropic: ended after a cancel); requests that ran before it have results.",
            "expired": "The batch ended after 24 hours with requests that had not run (Anthropic: ended, some expired).",
            "completed": "The batch has ended (Anthropic: ended).",
        },
    ),
}
PROVIDER_NAMES = tuple(PROVIDERS)
DEFAULT_PROVIDER = "openai"


def provider_info(name: str | None) -> ProviderInfo:
    """The facts about ``name``; an unknown or empty name reads as OpenAI (rows indexed before
    providers existed have none)."""
    return PROVIDERS.get(name or DEFAULT_PROVIDER, PROVIDERS[DEFAULT_PROVIDER])
