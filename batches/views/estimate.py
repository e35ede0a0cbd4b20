"""``GET /projects/<slug>/price/?model=…``: the Batch API rates of one model, as JSON, for the create
page's estimate (``static/batches/create.js``).

The browser already has the file the person chose: it counts the requests and the input tokens itself
(the rule of :func:`batches.oversight.estimate.estimate_jsonl`: UTF-8 bytes of each request's text ÷ 4,
plus 3 per chat message) and asks only for the rates, so nothing is uploaded for an estimate. The
answer comes from the bundled price data or the configured overrides: no upstream call.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe

from ..access import project_view
from ..costs.budgets import budget_state
from ..oversight import pricing
from ..oversight.estimate import BYTES_PER_TOKEN, ESTIMATE_METHOD, TOKENS_PER_MESSAGE
from ..projects import Project

MAX_MODEL_LENGTH = 200


@require_safe
@project_view
def model_price(request: HttpRequest, project: Project) -> JsonResponse:
    model = request.GET.get("model", "").strip()
    answer: dict = {
        "model": model,
        "price_data": pricing.price_data_version(),
        "source": pricing.price_data_label(),
        "per_tokens": 1_000_000,
        "bytes_per_token": BYTES_PER_TOKEN,
        "tokens_per_message": TOKENS_PER_MESSAGE,
        "method": ESTIMATE_METHOD,
    }
    status = 200
    if len(model) > MAX_MODEL_LENGTH:
        answer.update(model=model[:MAX_MODEL_LENGTH], known=False, reason="That is not a model name: it is too long.")
        status = 400
    else:
        try:
            rates = pricing.rates_for(model)
        except pricing.NoPrice as err:
            answer.update(known=False, reason=str(err))
        else:
            # Decimal rates as strings: dollars per million tokens, exactly as priced server-side.
            answer.update(
                known=True,
                model_id=rates.model_id,
                rates={"input": str(rates.input), "cached_input": str(rates.cached_input), "output": str(rates.output)},
                rates_source=rates.source,
                note=rates.note,
            )
    state = budget_state(project)
    if state is not None:
        # So the page can say, before anything is uploaded, that this file would cross the budget.
        answer["budget"] = {
            # Not rounded to cents: a file worth a fraction of a cent can be what crosses the budget.
            "monthly_usd": f"{state.budget.monthly_usd:.6f}",
            "spend_usd": f"{state.spend.spend:.6f}",
            "block_at_limit": state.budget.block_at_limit,
        }
    response = JsonResponse(answer, status=status)
    # Short: the budget part follows the month's spend.
    response["Cache-Control"] = "private, max-age=60" if state is not None else "private, max-age=300"
    return response
