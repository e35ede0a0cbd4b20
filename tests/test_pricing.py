"""Cost at Batch API rates: genai-prices arithmetic with cached tokens, "no price" with a reason,
overrides for negotiated rates, totals aggregated per model, and the create page's estimate."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.template import Context, Template
from genai_prices import Usage, calc_price

from batches.index.store import upsert_batches
from batches.index.records import batch_from_record
from batches.rows import PagePricer
from batches.models import BatchRecord
from batches.oversight import pricing, rates
from batches.oversight.estimate import estimate_jsonl
from batches.upstream import Batch
from tests.helpers import api_usage

pytestmark = pytest.mark.django_db

NOW = 1_790_000_000


def api_batch(batch_id: str, model: str | None = "gpt-4o-mini", usage: tuple[int, int, int] | None = (1000, 0, 0), status="completed", **extra) -> Batch:
    data = {
        "id": batch_id, "object": "batch", "endpoint": "/v1/chat/completions", "input_file_id": "file-1",
        "completion_window": "24h", "status": status, "created_at": NOW - 3600,
        "request_counts": {"total": 10, "completed": 10, "failed": 0},
    }
    if model is not None:
        data["model"] = model
    if usage is not None:
        data["usage"] = api_usage(*usage)
    data.update(extra)
    return Batch.from_api(data)


def store(*batches: Batch, project: str = "default") -> None:
    upsert_batches(project, list(batches))


def direct(model: str, input_tokens: int, cached: int, output: int) -> Decimal:
    return calc_price(
        Usage(input_tokens=input_tokens, cache_read_tokens=cached, output_tokens=output),
        model_ref=model, provider_id="openai", price_context={"processing": "batch"},
    ).total_price


@pytest.mark.parametrize("model", ["gpt-4o-mini-2024-07-18", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "gpt-5", "o3-mini", "gpt-3.5-turbo"])
def test_a_batch_costs_what_genai_prices_says_at_batch_rates_with_cached_tokens(model):
    usage = (1_234_567, 345_678, 456_789)
    price = pricing.batch_price(api_batch("batch_a", model, usage))
    assert price.known
    assert price.amount == direct(model, *usage)
    assert price.amount < calc_price(
        Usage(input_tokens=usage[0], cache_read_tokens=usage[1], output_tokens=usage[2]), model_ref=model, provider_id="openai"
    ).total_price, "batch rates are below the standard ones"


def test_gpt_4_1_by_hand_cached_tokens_at_their_own_rate():
    # genai-prices 0.2.3, gpt-4.1 batch: $1 input, $0.50 cached input, $4 output per 1M tokens.
    # OpenAI's input_tokens include the cached ones: 800k uncached + 200k cached.
    price = pricing.price_usage("gpt-4.1", 1_000_000, 200_000, 1_000_000)
    assert price.amount == Decimal("0.8") + Decimal("0.1") + Decimal("4")
    assert (price.rates.input, price.rates.cached_input, price.rates.output) == (Decimal("1"), Decimal("0.5"), Decimal("4"))
    assert price.display == "$4.90"


def test_a_record_from_the_index_is_priced_like_the_upstream_batch():
    batch = api_batch("batch_rec", "gpt-4o", (500_000, 100_000, 20_000))
    store(batch)
    record = BatchRecord.objects.get(batch_id="batch_rec")
    assert pricing.batch_price(record).amount == pricing.batch_price(batch).amount == direct("gpt-4o", 500_000, 100_000, 20_000)


def test_an_unknown_model_has_no_price_with_the_reason_never_zero():
    price = pricing.batch_price(api_batch("batch_u", "my-private-model-7", (1000, 0, 1000)))
    assert not price.known and price.amount is None
    assert price.display == "no price"
    assert "does not know the model “my-private-model-7”" in price.reason
    assert "DASHBOARD_PRICE_OVERRIDES" in price.reason


def test_a_batch_without_usage_or_model_has_no_price_with_the_reason():
    no_usage = pricing.batch_price(api_batch("batch_n", "gpt-4o", None, status="in_progress"))
    assert no_usage.amount is None and "no token usage" in no_usage.reason
    no_model = pricing.batch_price(api_batch("batch_m", None, (10, 0, 10)))
    assert no_model.amount is None and "names no model" in no_model.reason


def test_a_tiny_batch_does_not_read_as_zero_dollars():
    price = pricing.price_usage("gpt-4o-mini", 100, 0, 10)
    assert price.amount > 0
    assert price.display != "$0.00" and price.display.startswith("$0.0000")


def test_overrides_from_json_replace_the_rates_for_a_resolved_model_and_a_prefix(settings):
    settings.DASHBOARD_PRICE_OVERRIDES = json.dumps(
        {"gpt-4o-mini": {"input": 0.1, "cached_input": 0.01, "output": 1}, "ft:custom*": {"input": "2", "output": "8"}}
    )
    # The snapshot-dated name resolves to gpt-4o-mini in genai-prices, so the override applies.
    price = pricing.price_usage("gpt-4o-mini-2024-07-18", 1_000_000, 500_000, 1_000_000)
    assert price.amount == Decimal("0.05") + Decimal("0.005") + Decimal("1")
    assert price.rates.source == "override"
    fine_tuned = pricing.price_usage("ft:custom:acme::x1", 1_000_000, 250_000, 0)
    assert fine_tuned.amount == Decimal("2"), "cached_input defaults to input"
    assert pricing.price_usage("gpt-4o", 1_000_000, 0, 0).amount == direct("gpt-4o", 1_000_000, 0, 0), "others untouched"
    assert "negotiated rates for 2 model(s)" in pricing.price_data_label()


def test_overrides_from_a_toml_file(settings, tmp_path):
    path = tmp_path / "prices.toml"
    path.write_text('["my-private-model-7"]\ninput = 3\ncached_input = 1.5\noutput = 12\n')
    settings.DASHBOARD_PRICE_OVERRIDES = str(path)
    assert pricing.price_usage("My-Private-Model-7", 2_000_000, 1_000_000, 1_000_000).amount == Decimal("3") + Decimal("1.5") + Decimal("12")


@pytest.mark.parametrize(
    "raw, words",
    [
        ("{not json", "not valid JSON"),
        ('{"m": {"input": 1}}', "needs “output”"),
        ('{"m": {"input": -1, "output": 1}}', "zero or more"),
        ('{"m": {"input": 1, "output": 1, "cachd": 1}}', "unknown field(s) cachd"),
        ("/nonexistent/prices.toml", "cannot be read"),
    ],
)
def test_a_bad_override_turns_prices_off_with_a_reason_and_fails_the_system_check(settings, raw, words):
    settings.DASHBOARD_PRICE_OVERRIDES = raw
    price = pricing.price_usage("gpt-4o", 1000, 0, 0)
    assert price.amount is None and words in price.reason
    [error] = rates.check_price_overrides()
    assert error.id == "batches.E020" and words in error.msg


def test_a_total_aggregates_tokens_per_model_in_sql_and_counts_what_it_leaves_out(django_assert_num_queries):
    store(
        api_batch("b1", "gpt-4o-mini", (1_000_000, 200_000, 100_000)),
        api_batch("b2", "gpt-4o-mini-2024-07-18", (500_000, 0, 50_000)),
        api_batch("b3", "gpt-4.1", (2_000_000, 1_000_000, 10_000)),
        api_batch("b4", "gpt-4.1", None, status="in_progress"),
        api_batch("b5", "mystery-model", (10, 0, 10)),
    )
    store(api_batch("other", "gpt-4o", (9_000_000, 0, 0)), project="elsewhere")
    with django_assert_num_queries(1):
        total = pricing.price_total(BatchRecord.objects.filter(project="default"))
    expected = (
        direct("gpt-4o-mini", 1_000_000, 200_000, 100_000)
        + direct("gpt-4o-mini-2024-07-18", 500_000, 0, 50_000)
        + direct("gpt-4.1", 2_000_000, 1_000_000, 10_000)
    )
    assert total.amount == expected
    assert (total.batches, total.unpriced, total.priced) == (5, 2, 3)
    assert total.reasons == {pricing.NO_USAGE: 1, next(r for r in total.reasons if "mystery-model" in r): 1}
    assert total.sentence == f"{pricing.money(expected)} for 5 batches; 2 without a known price"


def test_the_total_sentence_groups_thousands():
    total = pricing.CostTotal(amount=Decimal("412.18"), batches=1240, unpriced=14)
    assert total.sentence == "$412.18 for 1,240 batches; 14 without a known price"
    assert pricing.CostTotal(amount=Decimal("1234.5"), batches=1).sentence == "$1,234.50 for 1 batch"


def test_tags_render_a_price_no_price_with_reason_and_a_total():
    store(api_batch("t1", "gpt-4.1", (1_000_000, 200_000, 1_000_000)), api_batch("t2", "mystery", (1, 0, 1)))
    price = PagePricer()
    a, b = (price(batch_from_record(BatchRecord.objects.get(batch_id=i))) for i in ("t1", "t2"))
    html = Template(
        '{% load oversight_tags batch_tags %}{% batch_cost a %}|'
        '{% batch_cost b %}|{% cost_total qs %}'
    ).render(Context({"a": a, "b": b, "qs": BatchRecord.objects.all()}))
    assert '<span class="cost">$4.90</span>' in html
    assert "no price" in html and "does not know the model “mystery”" in html
    assert "$4.90 for 2 batches; 1 without a known price" in html
    assert "genai-prices 0.2.3" in html


# -- estimate --------------------------------------------------------------------------------------


def line(custom_id: str, body: dict) -> bytes:
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}).encode()


def test_the_estimate_counts_four_bytes_a_token_plus_three_per_message_at_batch_rates():
    text = "x" * 400  # 100 tokens by the rule
    body = {"model": "gpt-4.1", "messages": [{"role": "system", "content": text}, {"role": "user", "content": [{"type": "text", "text": text}]}]}
    data = b"\n".join(line(f"r{i}", body) for i in range(10)) + b"\n"
    estimate = estimate_jsonl(data)
    assert estimate.model == "gpt-4.1" and estimate.requests == 10
    assert estimate.input_tokens == 10 * (200 + 2 * 3)
    assert estimate.input_price.amount == Decimal(2060) * Decimal(1) / Decimal(1_000_000)
    assert estimate.max_price is None, "without max tokens on every line the output is unknown"
    html = Template("{% load oversight_tags %}{% cost_estimate e %}").render(Context({"e": estimate}))
    assert "Estimate:" in html and "divided by 4" in html and "2,060" in html


def test_the_estimate_gives_an_upper_bound_when_every_line_sets_max_tokens_and_reads_a_file_object(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\r\n".join(line(f"r{i}", {"model": "gpt-4o-mini", "input": "abcd" * 25, "max_output_tokens": 1000}) for i in range(4)))
    with path.open("rb") as handle:
        estimate = estimate_jsonl(handle)
        assert handle.tell() == 0, "the file is rewound for the upload"
    assert estimate.input_tokens == 4 * 25 and estimate.max_output_tokens == 4000
    assert estimate.max_price.amount == direct("gpt-4o-mini", 100, 0, 4000)


def test_the_estimate_for_an_unknown_model_says_no_price():
    estimate = estimate_jsonl(line("r1", {"model": "mystery", "prompt": "hello"}))
    assert estimate.input_price.amount is None
    html = Template("{% load oversight_tags %}{% cost_estimate e %}").render(Context({"e": estimate}))
    assert "no price" in html and "$0" not in html


def test_a_model_with_long_context_tiers_is_priced_at_its_base_tier_and_says_so():
    # gpt-5.4 has per-request context tiers; a batch's summed usage must not jump to the top tier.
    usage = (1_000_000, 0, 1_000)
    price = pricing.price_usage("gpt-5.4", *usage)
    assert "base tier" in price.rates.note
    small = calc_price(Usage(input_tokens=1000, output_tokens=1), model_ref="gpt-5.4", provider_id="openai", price_context={"processing": "batch"})
    assert price.rates.input == small.model_price.input_mtok.base
