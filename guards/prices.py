"""Model prices per million tokens (input, output), in micro-dollars, and cost arithmetic.

Prices ship as data (list prices as published by Anthropic and OpenAI) and are
overridden by ``prices:`` in the policy file. Costs round **up** to the micro.

A model may also have a long-context price (:class:`LongContext`): a request whose
prompt is longer than its threshold is priced at those rates, all of it, as Anthropic
bills Claude Sonnet 4 and 4.5 prompts over 200,000 input tokens (the 1M-token window).

Example:
    >>> PriceTable().cost("claude-haiku-4-5", input_tokens=1200, output_tokens=800)
    5200
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from guards.money import ceil_div

__all__ = [
    "DEFAULT_PRICES",
    "MODEL_NAME_RULE",
    "LongContext",
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
class LongContext:
    """The rates (micro-dollars per million tokens) of a request whose prompt has more than
    ``above_input_tokens`` input tokens: they price the whole request, not the part above."""

    above_input_tokens: int
    input: int
    output: int


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """Micro-dollars per million tokens, and optionally the long-context rates.

    >>> sonnet = DEFAULT_PRICES["claude-sonnet-4-5"]
    >>> sonnet.rates(prompt_tokens=200_000), sonnet.rates(prompt_tokens=200_001)
    ((3000000, 15000000), (6000000, 22500000))
    """

    input: int
    output: int
    long_context: LongContext | None = None

    def rates(self, *, prompt_tokens: int) -> tuple[int, int]:
        """The (input, output) rates of a request whose prompt has ``prompt_tokens``."""
        long = self.long_context
        if long is not None and prompt_tokens > long.above_input_tokens:
            return long.input, long.output
        return self.input, self.output


def _usd(inp: str, out: str, long_context: tuple[int, str, str] | None = None) -> ModelPrice:
    from guards.money import parse_usd

    long = None
    if long_context is not None:
        above, long_in, long_out = long_context
        long = LongContext(above, parse_usd(long_in), parse_usd(long_out))
    return ModelPrice(parse_usd(inp), parse_usd(out), long)


# Anthropic: Sonnet 4 and 4.5 prompts over 200K input tokens (the 1M-token context window)
_SONNET_LONG = (200_000, "6", "22.50")


DEFAULT_PRICES: dict[str, ModelPrice] = {
    # Anthropic
    "claude-opus-4-1": _usd("15", "75"),
    "claude-opus-4-5": _usd("5", "25"),
    "claude-sonnet-4-5": _usd("3", "15", _SONNET_LONG),
    "claude-sonnet-4": _usd("3", "15", _SONNET_LONG),
    "claude-sonnet-4-0": _usd("3", "15", _SONNET_LONG),  # Anthropic's alias of claude-sonnet-4
    "claude-opus-4": _usd("15", "75"),
    "claude-opus-4-0": _usd("15", "75"),  # the alias of claude-opus-4
    "claude-haiku-4-5": _usd("1", "5"),
    "claude-3-7-sonnet": _usd("3", "15"),
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
    "o3-mini": _usd("1.10", "4.40"),
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
        self._prices = {_name(model): price for model, price in DEFAULT_PRICES.items()}
        shipped = dict(self._prices)
        for model, price in (overrides or {}).items():
            name = _name(model)
            if price.long_context is None:
                # new rates for a model with a shipped long-context price keep its premium,
                # as the same multiple of the rates (Sonnet: 2x input, 1.5x output): an
                # override that names none does not drop it, a discount is discounted
                # there too, and 0 / 0 stays free
                base = shipped.get(name) or shipped.get(undated(name))
                if base is not None and base.long_context is not None:
                    price = replace(price, long_context=_scaled(base, price))
            self._prices[name] = price

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

    def cost(
        self,
        model: str,
        *,
        input_tokens: int,
        output_tokens: int,
        prompt_tokens: int | None = None,
    ) -> int:
        """The cost in micros of a call, rounded up (one division for the whole call).

        A prompt longer than the model's long-context threshold prices the whole call at
        the long-context rates. ``prompt_tokens`` is the prompt's length for that test
        when ``input_tokens`` is not it (cached tokens counted at their price); it is
        ``input_tokens`` when not given.

        >>> PriceTable().cost("claude-sonnet-4-5", input_tokens=500_000, output_tokens=10_000)
        3225000
        """
        rate_in, rate_out = self.price(model).rates(
            prompt_tokens=input_tokens if prompt_tokens is None else prompt_tokens
        )
        return ceil_div(input_tokens * rate_in + output_tokens * rate_out, TOKENS_PER_PRICE)


def _scaled(base: ModelPrice, price: ModelPrice) -> LongContext:
    """``base``'s long-context rates in proportion to ``price``'s rates (rounded up)."""
    long = base.long_context
    assert long is not None

    def scale(premium: int, new: int, old: int) -> int:
        return ceil_div(premium * new, old) if old else premium

    return LongContext(
        long.above_input_tokens,
        scale(long.input, price.input, base.input),
        scale(long.output, price.output, base.output),
    )


def undated(model: str) -> str:
    """``model`` without a snapshot's date or ``-latest`` (lower case).

    >>> undated("GPT-4o-2024-08-06"), undated("claude-3-5-haiku-latest"), undated("o3")
    ('gpt-4o', 'claude-3-5-haiku', 'o3')
    """
    return _SNAPSHOT.sub("", _name(model))


def _name(model: str) -> str:
    return model.strip().lower()
