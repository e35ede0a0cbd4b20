"""Per-provider configuration, line rules and prices: the projects file's provider fields and their
refusals, Anthropic's JSONL line rules and limits, Anthropic batch prices and Azure's labelled ones."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal
from types import SimpleNamespace

import pytest

from batches import jsonl
from batches.checks import check_projects
from batches.oversight import eta, pricing
from batches.projects import ProjectsConfigError, get_project, parse_projects
from batches.upstream import AnthropicClient, Batch, Usage, client_for

ENV = {"K": "sk-1"}


def problems_of(text: str) -> list[str]:
    with pytest.raises(ProjectsConfigError) as err:
        parse_projects(text, environ=ENV)
    return err.value.problems


# -- the projects file ---------------------------------------------------------------------------


def test_a_project_is_openai_by_default_and_anthropic_defaults_to_the_public_api_root():
    openai, claude, azure = parse_projects(
        '[projects.o]\napi_key_env = "K"\n'
        '[projects.c]\napi_key_env = "K2"\nprovider = "anthropic"\n'
        '[projects.z]\napi_key_env = "K3"\nprovider = "azure"\nbase_url = "https://r.openai.azure.com/"\n'
        'api_version = "2024-10-21"\ndeployments = {my-mini = "gpt-4o-mini"}\n',
        environ={"K": "a", "K2": "b", "K3": "c"},
    )
    assert (openai.provider, openai.api_version, openai.deployments) == ("openai", "", {})
    assert (claude.provider, claude.base_url) == ("anthropic", "https://api.anthropic.com")
    assert (azure.provider, azure.base_url, azure.api_version) == ("azure", "https://r.openai.azure.com", "2024-10-21")
    assert azure.deployments == {"my-mini": "gpt-4o-mini"}
    assert claude.provider_info.label == "Anthropic" and not claude.provider_info.webhooks


@pytest.mark.parametrize(
    "fields, expected",
    [
        ('provider = "bedrock"', "project “p”: provider must be one of openai, azure, anthropic, not “bedrock”"),
        ('provider = "azure"', "project “p”: base_url is required for Azure OpenAI"),
        ('provider = "azure"\nbase_url = "https://r.openai.azure.com"',
         "project “p”: an Azure OpenAI base_url without api_version must end in /openai/v1"),
        ('provider = "azure"\nbase_url = "https://r.openai.azure.com/openai/v1"\napi_version = "2024-10-21"',
         "project “p”: api_version goes with the resource's endpoint"),
        ('provider = "azure"\nbase_url = "https://r.openai.azure.com/openai/v1"\ndeployments = ["gpt-4o"]',
         "project “p”: deployments must be a table of deployment name"),
        ('deployments = {a = "gpt-4o"}', "project “p”: deployments is for Azure projects only"),
        ('api_version = "2024-10-21"', "project “p”: api_version is for Azure and Anthropic projects"),
        ('provider = "anthropic"\napi_version = "2023 06 01"', "project “p”: api_version “2023 06 01” is not a version"),
        ('provider = "anthropic"\norganization = "org-1"', "project “p”: organization is an OpenAI header"),
        ('provider = "anthropic"\nwebhook_secret_env = "S"', "project “p”: webhook_secret_env is set, but Anthropic sends no webhooks"),
        ('provider = "anthropic"\nbase_url = "ftp://x"', "project “p”: base_url must start with http:// or https://"),
    ],
)
def test_a_bad_provider_combination_is_refused_naming_the_project_and_the_field(fields, expected):
    problems = problems_of(f'[projects.p]\napi_key_env = "K"\n{fields}\n')
    assert any(expected in problem for problem in problems), problems


def test_a_bad_provider_field_is_a_system_check_error(write_projects):
    write_projects('[projects.claude]\napi_key_env = "K_CHECK"\nprovider = "anthropic"\ndeployments = {a = "b"}\n', K_CHECK="sk")
    (error,) = check_projects(None)
    assert error.id == "batches.E010" and "project “claude”: deployments is for Azure projects only" in error.msg


def test_the_registry_gives_each_project_its_providers_client(write_projects):
    write_projects(
        '[projects.claude]\napi_key_env = "K_A"\nprovider = "anthropic"\n'
        '[projects.az]\napi_key_env = "K_B"\nprovider = "azure"\nbase_url = "https://r.openai.azure.com/openai/v1"\n',
        K_A="sk-a", K_B="sk-b",
    )
    assert type(client_for(get_project("claude"))).__name__ == "AnthropicClient"
    assert type(client_for(get_project("az"))).__name__ == "AzureClient"


# -- Anthropic's line rules ----------------------------------------------------------------------


def claude_line(custom_id="r1", **params) -> str:
    body = {"model": "claude-haiku-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    body.update(params)
    return json.dumps({"custom_id": custom_id, "params": body})


def check_claude(text: str):
    data = text.encode()
    return jsonl.validate_jsonl(io.BytesIO(data), size=len(data), provider="anthropic")


def test_a_valid_anthropic_file_passes_with_its_model_and_count():
    result = check_claude("\n".join(claude_line(f"r-{n}") for n in range(3)) + "\n")
    assert result.ok and result.requests == 3 and result.model == "claude-haiku-4-5" and result.url is None


def test_anthropic_lines_are_refused_with_their_line_numbers_and_reasons():
    lines = [
        claude_line("ok_1"),
        claude_line("has space"),
        claude_line("ok_1"),
        json.dumps({"custom_id": "x2", "method": "POST", "url": "/v1/chat/completions", "body": {}}),
        claude_line("x3", max_tokens=0),
        claude_line("x4", stream=True),
        claude_line("x5", messages=[]),
        claude_line("x6", speed="fast"),
        json.dumps({"custom_id": "x7", "params": {"max_tokens": 5, "messages": [{"role": "user", "content": "a"}]}}),
        claude_line("y" * 65),
    ]
    result = check_claude("\n".join(lines) + "\n")
    found = [(e.line, e.message) for e in result.errors]
    assert (2, "has custom_id “has space”; Anthropic allows 1 to 64 letters, digits, “_” and “-”.") in found
    assert (3, "repeats custom_id “ok_1” (first used on line 1); each custom_id must be unique.") in found
    assert (4, "has field(s) body, method, url; an Anthropic batch line has only custom_id and params (this looks like an OpenAI line).") in found
    assert (4, "has params that is null, not a JSON object (a Messages request).") in found
    assert (5, "needs params.max_tokens as a whole number of at least 1.") in found
    assert (6, "sets params.stream to true; a batch request cannot stream.") in found
    assert (7, "needs params.messages as a non-empty array of messages.") in found
    assert (8, "sets params.speed, which a batch request does not allow.") in found
    assert (9, "has no params.model (the Claude model to run).") in found
    assert [line for line, _ in found if line == 10] == [10]
    assert result.error_count == len(found)


def test_anthropic_files_may_hold_100000_requests_and_256_mb():
    validator = jsonl.JsonlValidator("anthropic")
    assert (validator.max_requests, validator.max_bytes) == (100_000, 256 * 1024 * 1024)
    big = jsonl.JsonlValidator("anthropic")
    big.feed(claude_line().encode() + b"\n")
    big.finish()
    over = big.result(size=257 * 1024 * 1024)
    assert [e.text for e in over.errors] == ["The file is 257.0 MB; the Batch API accepts at most 256 MB."]


def test_an_openai_line_in_an_anthropic_project_is_refused_and_an_anthropic_line_in_an_openai_one_too():
    openai_line = json.dumps({"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
                              "body": {"model": "gpt-4o-mini", "messages": []}})
    assert not check_claude(openai_line + "\n").ok
    data = (claude_line() + "\n").encode()
    assert not jsonl.validate_jsonl(io.BytesIO(data), size=len(data)).ok


# -- prices --------------------------------------------------------------------------------------


def test_an_anthropic_batch_is_priced_at_genai_prices_batch_rates_from_its_result_usage():
    batch = Batch(id="msgbatch_1", status="completed", provider="anthropic", model="claude-sonnet-4-6",
                  usage=Usage(input_tokens=1_000_000, cached_tokens=0, output_tokens=1_000_000))
    price = pricing.batch_price(batch)
    assert price.amount == Decimal("9.0")  # $1.50 + $7.50 per MTok, half the standard $18
    assert "summed from the usage of the batch's result lines" in price.rates.note


def test_a_model_whose_batch_price_genai_prices_lacks_is_refused_not_shown_at_its_standard_price():
    batch = Batch(id="msgbatch_1", status="completed", provider="anthropic", model="claude-opus-4-1",
                  usage=Usage(input_tokens=1_000_000, output_tokens=1_000_000))
    price = pricing.batch_price(batch)
    assert price.amount is None
    assert "has no batch price for “claude-opus-4-1”, only its standard price" in price.reason


def test_an_anthropic_batch_without_read_results_has_no_price_and_says_why():
    batch = AnthropicClient.parse_batch({"id": "msgbatch_1", "processing_status": "ended",
                                         "request_counts": {"succeeded": 1}})
    price = pricing.batch_price(batch)
    assert price.amount is None and "summed from the result lines once the batch has ended" in price.reason


def test_an_azure_batch_is_priced_at_openai_batch_rates_for_its_deployments_model_and_labelled():
    usage = Usage(input_tokens=1_000_000, cached_tokens=0, output_tokens=250_000)
    mapped = Batch(id="batch_1", status="completed", provider="azure", model="my-mini", price_model="gpt-4o-mini", usage=usage)
    price = pricing.batch_price(mapped)
    assert price.amount == Decimal("0.15") and "at OpenAI's batch rates for the deployment's model" in price.rates.note
    unmapped = Batch(id="batch_2", status="completed", provider="azure", model="gpt-4o-mini", usage=usage)
    refused = pricing.batch_price(unmapped)
    assert refused.amount is None
    assert "“gpt-4o-mini” is a deployment whose model the projects file does not name" in refused.reason


# -- progress and trouble without live counts ------------------------------------------------------


def anthropic_running(expires_in: int, now: int) -> Batch:
    return AnthropicClient.parse_batch({
        "id": "msgbatch_eta", "processing_status": "in_progress",
        "request_counts": {"processing": 500, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
        "created_at": now - 86400 + expires_in, "expires_at": now + expires_in,
    })


def test_an_anthropic_batch_gets_no_rate_eta_and_is_at_risk_only_in_its_last_hour():
    now = 1_800_000_000
    calm = eta.compute(anthropic_running(3 * 3600, now), [], observed_at=now)
    assert calm.eta_at is None and calm.rate_per_minute is None and calm.flags == []
    assert calm.explanation == (
        "No ETA: 500 requests processing, and this provider reports no progress until the whole batch has ended."
    )
    late = eta.compute(anthropic_running(30 * 60, now), [], observed_at=now)
    assert [flag.slug for flag in late.flags] == ["at-risk"]
    assert late.flags[0].sentence.startswith("Still processing 30 minutes before it expires at ")


def test_an_anthropic_batch_whose_counts_never_move_is_not_called_stalled():
    now = 1_800_000_000
    samples = [SimpleNamespace(taken_at=dt.datetime.fromtimestamp(now - minutes * 60, tz=dt.UTC), status="in_progress",
                               total_requests=500, completed_requests=0, failed_requests=0) for minutes in (120, 60, 10)]
    result = eta.compute(anthropic_running(6 * 3600, now), samples, observed_at=now)
    assert "stalled" not in [flag.slug for flag in result.flags]
