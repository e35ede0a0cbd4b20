"""Batch prices the emulator bills its own usage at (US$ per 1M tokens: input, cached input, output).

Half the standard prices published for these models (the Batch API's 50 % discount, NOTES.md §6.2),
for the models the seed uses; a dated snapshot name (``gpt-4o-2024-08-06``) is priced as its base model.
Unknown models get ``DEFAULT``. These figures only make the Admin API's answers plausible: the emulator's
``--cost-skew`` scales them to demo a difference between estimated and billed costs.
"""

import re

BATCH_PRICES = {
    "gpt-4o-mini": (0.075, 0.0375, 0.30),
    "gpt-4o": (1.25, 0.625, 5.00),
    "gpt-4.1": (1.00, 0.25, 4.00),
    "gpt-4.1-mini": (0.20, 0.05, 0.80),
    "gpt-4.1-nano": (0.05, 0.0125, 0.20),
    "gpt-5": (0.625, 0.0625, 5.00),
    "gpt-5-mini": (0.125, 0.0125, 1.00),
    "gpt-5-nano": (0.025, 0.0025, 0.20),
    "o4-mini": (0.55, 0.1375, 2.20),
    "gpt-3.5-turbo-instruct": (0.75, 0.75, 1.00),
    "text-embedding-3-small": (0.01, 0.01, 0.0),
    "text-embedding-3-large": (0.065, 0.065, 0.0),
    "omni-moderation-latest": (0.0, 0.0, 0.0),
    "gpt-image-1": (2.50, 0.625, 20.00),
}
DEFAULT = (1.00, 0.50, 4.00)
_DATED = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def batch_price(model):
    """(input, cached input, output) in US$ per 1M tokens."""
    return BATCH_PRICES.get(model) or BATCH_PRICES.get(_DATED.sub("", model or "")) or DEFAULT
