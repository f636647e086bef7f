"""Model prices per million tokens (input, output), in micro-dollars, and cost arithmetic.

Prices ship as data (list prices as published by Anthropic and OpenAI) and are
overridden by ``prices:`` in the policy file. Costs round **up** to the micro.

Example:
    >>> PriceTable().cost("claude-haiku-4-5", input_tokens=1200, output_tokens=800)
    5200
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from guards.money import ceil_div

__all__ = [
    "DEFAULT_PRICES",
    "MODEL_NAME_RULE",
    "ModelPrice",
    "PriceTable",
    "UnknownModel",
    "cached_input_tokens",
    "is_model_name",
    "undated",
]

TOKENS_PER_PRICE = 1_000_000
# what the SDKs add to a model's name: a snapshot's date (20251001, 2024-08-06) or -latest
_SNAPSHOT = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2}|latest)$")
# Every provider's names fit: gpt-4o, claude-haiku-4-5-20251001, anthropic/claude-3.5-sonnet,
# us.anthropic.claude-3-5-sonnet-20241022-v2:0, llama3:8b, a fine-tune's ft:gpt-4o:org@x.
# Nothing else: a model name is shown to operators (Slack, the digest, /v1/breakers).
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}")
MODEL_NAME_RULE = (
    "a model name is letters, digits and . _ - : / @ + (as gpt-4o or"
    " anthropic/claude-3.5-sonnet), starting with a letter or digit"
)


def is_model_name(name: str) -> bool:
    """Whether ``name`` may name a model (what reservations, breakers and silences take).

    >>> is_model_name("anthropic/claude-3.5-sonnet"), is_model_name("<!channel>")
    (True, False)
    """
    return _MODEL_NAME.fullmatch(name) is not None


def cached_input_tokens(writes: int, reads: int) -> int:
    """Anthropic's prompt-cache tokens as input tokens of the same price: a cache write
    costs 1.25x an input token, a read 0.1x (each rounded up).

    >>> cached_input_tokens(1000, 5001)
    1751
    """
    return ceil_div(writes * 5, 4) + ceil_div(reads, 10)


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """Micro-dollars per million tokens."""

    input: int
    output: int


def _usd(inp: str, out: str) -> ModelPrice:
    from guards.money import parse_usd

    return ModelPrice(parse_usd(inp), parse_usd(out))


DEFAULT_PRICES: dict[str, ModelPrice] = {
    # Anthropic
    "claude-opus-4-1": _usd("15", "75"),
    "claude-opus-4-5": _usd("5", "25"),
    "claude-sonnet-4-5": _usd("3", "15"),
    "claude-sonnet-4": _usd("3", "15"),
    "claude-haiku-4-5": _usd("1", "5"),
    "claude-3-5-haiku": _usd("0.80", "4"),
    # OpenAI
    "gpt-5": _usd("1.25", "10"),
    "gpt-5-mini": _usd("0.25", "2"),
    "gpt-5-nano": _usd("0.05", "0.40"),
    "gpt-4.1": _usd("2", "8"),
    "gpt-4.1-mini": _usd("0.40", "1.60"),
    "gpt-4.1-nano": _usd("0.10", "0.40"),
    "gpt-4o": _usd("2.50", "10"),
    "gpt-4o-2024-05-13": _usd("5", "15"),  # a snapshot priced apart from its model
    "gpt-4o-mini": _usd("0.15", "0.60"),
    "o3": _usd("2", "8"),
    "o4-mini": _usd("1.10", "4.40"),
}


class UnknownModel(KeyError):
    """A model that is neither in the shipped table nor in the policy's ``prices``."""


class PriceTable:
    """The shipped prices with the policy's overrides on top.

    Model names are compared in lower case, as breakers compare them: ``GPT-4o`` is
    ``gpt-4o``. A dated snapshot or an alias that the SDKs report (``gpt-4o-2024-08-06``,
    ``claude-haiku-4-5-20251001``, ``claude-3-5-haiku-latest``) costs what its model
    costs, unless the table names it itself.

    >>> PriceTable().price("claude-haiku-4-5-20251001") == PriceTable().price("claude-haiku-4-5")
    True
    """

    def __init__(self, overrides: Mapping[str, ModelPrice] | None = None) -> None:
        prices = {**DEFAULT_PRICES, **(overrides or {})}
        self._prices = {_name(model): price for model, price in prices.items()}

    def __contains__(self, model: str) -> bool:
        return self._find(model) is not None

    def priced_as(self, model: str) -> str | None:
        """The table's name for ``model`` (``gpt-4o`` for ``GPT-4o-2024-08-06``), or None."""
        name = _name(model)
        if name in self._prices:
            return name
        base = undated(name)
        return base if base in self._prices else None

    def _find(self, model: str) -> ModelPrice | None:
        name = self.priced_as(model)
        return None if name is None else self._prices[name]

    def models(self) -> list[str]:
        return sorted(self._prices)

    def price(self, model: str) -> ModelPrice:
        found = self._find(model)
        if found is None:
            raise UnknownModel(model)
        return found

    def blended(self, model: str, *, input_share: float) -> int | None:
        """Micros per million tokens of ``model`` when ``input_share`` of them are input.

        None for a model without a price.
        """
        p = self._find(model)
        if p is None:
            return None
        return round(p.input * input_share + p.output * (1 - input_share))

    def free(self, model: str) -> bool:
        """Whether ``model`` is priced at nothing (a local model, say)."""
        p = self._find(model)
        return p is not None and p.input == 0 and p.output == 0

    def cost(self, model: str, *, input_tokens: int, output_tokens: int) -> int:
        """The cost in micros of a call, rounded up."""
        p = self.price(model)
        return ceil_div(input_tokens * p.input + output_tokens * p.output, TOKENS_PER_PRICE)


def undated(model: str) -> str:
    """``model`` without a snapshot's date or ``-latest`` (lower case).

    >>> undated("GPT-4o-2024-08-06"), undated("claude-3-5-haiku-latest"), undated("o3")
    ('gpt-4o', 'claude-3-5-haiku', 'o3')
    """
    return _SNAPSHOT.sub("", _name(model))


def _name(model: str) -> str:
    return model.strip().lower()
