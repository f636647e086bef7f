"""What a hold is on the client side, and how an LLM SDK's usage becomes token counts.

:class:`Hold` is what ``GuardClient.reserve`` yields; :func:`as_usage` reads a
:class:`Usage`, a mapping, or an Anthropic or OpenAI usage object. Both are exported
by :mod:`guards.client`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from guards.reservation import OUTCOMES

__all__ = ["TEXT_CHARS", "Hold", "Usage", "as_usage", "read_cost", "settle_body"]

#: the longest free text the server takes (a settle's ``error``, a heartbeat's ``detail``)
TEXT_CHARS = 2000


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens a call really used."""

    model: str
    input_tokens: int
    output_tokens: int
    # Anthropic's prompt cache, as its usage names them (not in input_tokens there): sent
    # as they are, so that the server counts the whole prompt against a long-context price
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


@dataclass
class Hold:
    """A granted reservation inside ``GuardClient.reserve``."""

    reservation_id: str
    held_micros: int
    expires_at: str
    model: str | None = None  # the model reserved for: the default of a usage without one
    _usage: Usage | None = None
    _actual: int | None = None
    _outcome: str = "success"
    _error: str | None = None
    _unread: str | None = None  # why a cost reported could not be read (the call spent)
    _unread_error: ValueError | None = None  # what hold.settle raised then
    _closed: bool = False
    result: dict[str, Any] = field(default_factory=dict)

    def settle(
        self,
        *,
        usage: Any = None,
        actual_cost_micros: int | None = None,
        outcome: str = "success",
        error: str | None = None,
    ) -> None:
        """Say what the call cost; it is sent when the ``async with`` block ends.

        ``usage`` is a :class:`Usage`, a mapping, or an LLM SDK's usage object: token
        counts named ``input_tokens``/``output_tokens`` (Anthropic) or
        ``prompt_tokens``/``completion_tokens`` (OpenAI); without a ``model`` it is
        the model reserved for. ``actual_cost_micros`` is whole micro-dollars. What
        cannot be read raises here, inside the block; unless a readable settle follows,
        the hold's whole ceiling is charged then (a cost was reported: the call spent, how
        much is not known). Anthropic's prompt-cache tokens,
        which its ``input_tokens`` leaves out, count as input tokens at their price
        relative to input: cache writes at 1.25x, cache reads at 0.1x, each rounded up.

        A hold settles once: saying the same again is harmless, saying something else
        raises, and so does settling after the block ended (what it held went back then).
        """
        if self._closed:
            raise RuntimeError(
                f"the reserve block of {self.reservation_id} has ended, and its hold with it"
                f" ({self.result.get('state', 'given back')}): call hold.settle inside the block"
            )
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome is one of {', '.join(OUTCOMES)}")
        try:
            new_usage, new_actual = read_cost(
                usage=usage, actual_cost_micros=actual_cost_micros, default_model=self.model
            )
        except ValueError as exc:
            if not self.settled:
                self._unread, self._outcome, self._unread_error = str(exc), outcome, exc
            raise
        said = (new_usage, new_actual, outcome, error)
        if self.settled and said != (self._usage, self._actual, self._outcome, self._error):
            raise RuntimeError(
                f"{self.reservation_id} was settled already in this block"
                f" ({self._describe()}); a hold settles once"
            )
        self._usage, self._actual, self._outcome, self._error = said
        self._unread = None

    def _describe(self) -> str:
        cost = f"usage {self._usage}" if self._usage else f"{self._actual} micros"
        return f"{cost}, {self._outcome}"

    def close(self) -> None:
        """The block ended: a later :meth:`settle` raises instead of being dropped."""
        self._closed = True

    @property
    def settled(self) -> bool:
        return self._usage is not None or self._actual is not None

    @property
    def unread_error(self) -> ValueError | None:
        """The error :meth:`settle` raised for a cost it could not read (none followed)."""
        return None if self.settled else self._unread_error

    @property
    def spent(self) -> bool:
        """A cost was reported (read or not): the call spent money, so it is charged."""
        return self.settled or self._unread is not None

    def body(self, outcome: str | None = None, error: str | None = None) -> dict[str, Any]:
        b: dict[str, Any] = {"outcome": outcome or self._outcome}
        if not self.settled and self._unread is not None:
            why = f"charged the ceiling: the cost reported could not be read ({self._unread})"
            b["actual_cost_micros"] = self.held_micros
            b["error"] = (f"{error}; {why}" if error else why)[:TEXT_CHARS]
            return b
        if self._usage is not None:
            u = self._usage
            b["usage"] = {
                "model": u.model,
                "input_tokens": u.input_tokens,
                "output_tokens": u.output_tokens,
            }
            if u.cache_creation_input_tokens:
                b["usage"]["cache_creation_input_tokens"] = u.cache_creation_input_tokens
            if u.cache_read_input_tokens:
                b["usage"]["cache_read_input_tokens"] = u.cache_read_input_tokens
        else:
            b["actual_cost_micros"] = self._actual
        if error or self._error:
            b["error"] = (error or self._error or "")[:TEXT_CHARS]
        return b


def read_cost(
    *, usage: Any, actual_cost_micros: Any, default_model: str | None
) -> tuple[Usage | None, int | None]:
    """Exactly one of a usage (read by :func:`as_usage`) or whole micro-dollars, checked."""
    if (usage is None) == (actual_cost_micros is None):
        raise ValueError("pass exactly one of usage or actual_cost_micros")
    if usage is not None:
        return as_usage(usage, default_model=default_model), None
    if (
        not isinstance(actual_cost_micros, int)
        or isinstance(actual_cost_micros, bool)
        or actual_cost_micros < 0
    ):
        raise ValueError(
            f"actual_cost_micros is whole micro-dollars (0 or more), not {actual_cost_micros!r}:"
            " from dollars, math.ceil(usd * 1_000_000)"
        )
    return None, actual_cost_micros


def settle_body(
    *,
    usage: Any = None,
    actual_cost_micros: int | None = None,
    outcome: str = "success",
    error: str | None = None,
    default_model: str | None = None,
) -> dict[str, Any]:
    """The JSON body of a settle, from the keywords :meth:`Hold.settle` takes."""
    hold = Hold("", 0, "", model=default_model)
    hold.settle(usage=usage, actual_cost_micros=actual_cost_micros, outcome=outcome, error=error)
    return hold.body()


def as_usage(usage: Any, *, default_model: str | None = None) -> Usage:
    """A :class:`Usage` from a Usage, a mapping or an SDK usage object (see ``Hold.settle``)."""
    if isinstance(usage, Usage):
        return usage

    def read(*names: str) -> Any:
        for name in names:
            value = usage.get(name) if isinstance(usage, dict) else getattr(usage, name, None)
            if value is not None:
                return value
        return None

    model = read("model") or default_model
    input_tokens = read("input_tokens", "prompt_tokens")
    output_tokens = read("output_tokens", "completion_tokens")
    cache_writes = read("cache_creation_input_tokens") or 0
    cache_reads = read("cache_read_input_tokens") or 0
    if not isinstance(model, str) or not model:
        raise ValueError(
            "usage has no model, and none is known for this reservation: give the usage its"
            " model (usage.model)"
        )
    for name, value in (
        ("input_tokens", input_tokens),
        ("output_tokens", output_tokens),
        ("cache_creation_input_tokens", cache_writes),
        ("cache_read_input_tokens", cache_reads),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"usage.{name} must be a whole number of tokens, not {value!r}")
    return Usage(model, input_tokens, output_tokens, cache_writes, cache_reads)
