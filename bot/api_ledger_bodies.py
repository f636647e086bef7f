"""The bodies of the reservation calls, as pydantic reads them: ``POST /v1/reservations``
(:class:`ReserveBody`) and its settle (:class:`SettleBody`); every field bounded, every
unknown field refused (:class:`~bot.api_body.Body`), and an amount sent as neither or
both of its two forms a ``400`` naming what to send.

Example:
    >>> ReserveBody.model_validate(
    ...     {"scope": "acme/a/bot", "idempotency_key": "k1", "max_cost_micros": 5000}
    ... ).max_cost_micros
    5000
"""

from __future__ import annotations

from typing import Annotated, NoReturn

from pydantic import AfterValidator, Field, StrictInt, model_validator

from bot.api_body import Body, FreeText
from guards.errors import InvalidInput
from guards.prices import MODEL_NAME_RULE, cached_input_tokens, is_model_name
from guards.reservation import Outcome

__all__ = ["EstimateBody", "ModelName", "ReserveBody", "SettleBody", "UsageBody"]


def _model_name(value: str) -> str:
    name = value.strip(" ")  # spaces around it are forgiven (and dropped); no more
    if not is_model_name(name):
        raise ValueError(MODEL_NAME_RULE)
    return name


ModelName = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_model_name)]


class EstimateBody(Body):
    model: ModelName
    input_tokens: StrictInt = Field(ge=0, le=10**9)
    max_output_tokens: StrictInt = Field(ge=0, le=10**9)


class ReserveBody(Body):
    scope: str = Field(min_length=1, max_length=400)
    idempotency_key: str = Field(min_length=1, max_length=200)
    max_cost_micros: StrictInt | None = Field(None, ge=1, le=10**15)
    estimate: EstimateBody | None = None
    task_id: str | None = Field(None, min_length=1, max_length=200)
    ttl_seconds: StrictInt | None = Field(None, ge=1)  # at most: the policy's (check_ttl)
    model: ModelName | None = None
    route_id: str | None = Field(None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _one_amount(self) -> ReserveBody:
        if (self.max_cost_micros is None) == (self.estimate is None):
            _one_of(self, "max_cost_micros", "estimate")
        return self


class UsageBody(Body):
    model: ModelName
    input_tokens: StrictInt = Field(ge=0, le=10**9)
    output_tokens: StrictInt = Field(ge=0, le=10**9)
    # Anthropic's prompt cache, as its usage names them (not in input_tokens there)
    cache_creation_input_tokens: StrictInt | None = Field(None, ge=0, le=10**9)
    cache_read_input_tokens: StrictInt | None = Field(None, ge=0, le=10**9)

    def priced_input(self) -> int:
        """Input tokens, the cache's counted at their price as input."""
        return self.input_tokens + cached_input_tokens(
            self.cache_creation_input_tokens or 0, self.cache_read_input_tokens or 0
        )

    def prompt_tokens(self) -> int:
        """The prompt's length, every cached token counted (a long-context price's test)."""
        writes, reads = self.cache_creation_input_tokens or 0, self.cache_read_input_tokens or 0
        return self.input_tokens + writes + reads


class SettleBody(Body):
    actual_cost_micros: StrictInt | None = Field(None, ge=0, le=10**15)
    usage: UsageBody | None = None
    outcome: Outcome | None = None  # None: success
    error: FreeText = Field(None, max_length=2000)

    @model_validator(mode="after")
    def _one_cost(self) -> SettleBody:
        if (self.actual_cost_micros is None) == (self.usage is None):
            _one_of(self, "actual_cost_micros", "usage")
        return self


def _one_of(body: Body, *names: str) -> NoReturn:
    """Neither or both of ``names`` given: the 400 names a field sent as ``null`` (its
    value, not a missing one, is what is wrong), else the body."""
    either = " or ".join(names)
    nulls = [n for n in names if n in body.model_fields_set and getattr(body, n) is None]
    if nulls:  # not a ValueError: pydantic would say it of the whole body
        raise InvalidInput(nulls[0], f"{nulls[0]}: null is no value; send exactly one of {either}")
    raise ValueError(f"send exactly one of {either}")
