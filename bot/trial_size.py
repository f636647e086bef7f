"""The size an approver gives a trial: ``/agent breaker <scope> approve [calls] [$budget]``.

The two words are optional and come in any order: a whole number is the number of trial
calls, a dollar amount (``$0.10``, ``0.10``: a ``$`` or a decimal point says it is money)
the trial's budget, parsed exactly as every amount the bot takes. What is not given is
the policy's (``breakers.half_open.trial_calls`` / ``trial_budget``, or its
``breakers.scopes`` prefix's): the engine fills it in. Anything else is refused before
anything changes, with what to write instead.

Example:
    >>> parse_trial_size(["$0.10", "1"])
    TrialSize(calls=1, budget_micros=100000)
    >>> parse_trial_size([])
    TrialSize(calls=None, budget_micros=None)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.blocks import echo
from bot.chat_words import Word
from bot.commands import UsageError
from guards.money import MICROS_PER_USD, format_usd, parse_usd

__all__ = ["MAX_TRIAL_BUDGET_MICROS", "MAX_TRIAL_CALLS", "TrialSize", "parse_trial_size"]

MAX_TRIAL_CALLS = 1000  # as many as the policy's half_open.trial_calls may say
MAX_TRIAL_BUDGET_MICROS = 1_000 * MICROS_PER_USD  # a trial is a careful try, not a budget
_CALLS = re.compile(r"[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+", re.ASCII)  # 3, 1,000
_MONEY = re.compile(r"\$.*|[0-9,]*\.[0-9]*", re.ASCII)  # $0.10, $5, 0.10, .5
_POINT_AFTER = re.compile(r"[0-9][0-9,]*\.", re.ASCII)  # 5.: no cents after it
_GROUP = re.compile(r"0[0-9]{2}", re.ASCII)  # the 000 of `$1 000`: no count starts with 0
_NEGATIVE = re.compile(r"[-−]+\$?[0-9.,]+.*", re.ASCII)  # -1, -$0.10, --5
# a well-formed amount (whatever its size): its whole dollars, grouped or not
_AMOUNT = re.compile(r"\$?([0-9]+|[0-9]{1,3}(?:,[0-9]{3})+)(?:\.[0-9]*)?", re.ASCII)
EXAMPLE = "`/agent breaker <scope> approve 1 $0.10` (a trial of 1 call within $0.10)"


@dataclass(frozen=True, slots=True)
class TrialSize:
    """A trial's size as the approver gave it; None: the policy's."""

    calls: int | None = None
    budget_micros: int | None = None

    def given(self) -> bool:
        return self.calls is not None or self.budget_micros is not None


def parse_trial_size(words: list[str]) -> TrialSize:
    """The words after ``approve``: at most one number of calls and one budget. A word
    typed with a point (``5.``) is read with it (:func:`_as_typed`): never as calls.

    Raises:
        UsageError: a word that is neither, or one out of range, or two of a kind.
    """
    calls: int | None = None
    budget: int | None = None
    said: dict[str, str] = {}  # the first word of each kind, as given
    before = ""
    for given in words:
        word = _as_typed(given)
        if _GROUP.fullmatch(word) and _CALLS.fullmatch(before.lstrip("$")):
            raise UsageError(  # `$1 000`, `1 000`: one number, its groups parted by a space
                f"`{echo(before, 20)} {word}`: a number takes no spaces here: write"
                f" `{echo(before, 20)},{word}`, as {EXAMPLE}. Nothing changed."
            )
        before = word
        if word.startswith(("-", "−")) and len(word) > 1:
            raise _dashed(word)
        if _CALLS.fullmatch(word):
            if calls is not None:
                raise _twice("numbers of calls", said["calls"], word)
            calls, said["calls"] = _calls(word), word
        elif _POINT_AFTER.fullmatch(word):
            raise _point_after(word)
        elif _MONEY.fullmatch(word):
            if budget is not None:
                raise _twice("budgets", said["budget"], word)
            budget, said["budget"] = _budget(word, typed=_typed(given)), word
        else:
            raise UsageError(
                f"`breaker approve` takes no reason: `{echo(word, 20)}` is neither a number of"
                f" calls nor a budget, as {EXAMPLE}. Nothing changed."
            )
    return TrialSize(calls, budget)


def _as_typed(word: str) -> str:
    """``word`` with the point the chat words took off it (``5.`` → ``5``, as a sentence's
    full stop) put back: typed with a point, it is money (or refused), never a number of
    calls (review24 trial M1: `approve 5.` started a trial of 5 calls). A word that says
    it is money (``$5.``, ``$0.10.``) stays as tidied: its full stop was one."""
    if isinstance(word, Word) and "." in word.typed and not any(c in word for c in "$."):
        return f"{word}."
    return str(word)


def _typed(word: str) -> str:
    """``word`` as it was typed, less the backticks or asterisks around it (``$.``, not the
    ``$`` the chat words left of it: recheck24 L2)."""
    return (word.typed.strip("`*") or str(word)) if isinstance(word, Word) else word


def _point_after(word: str) -> UsageError:
    """``5.``: money by its point, but no amount as written (a full stop, maybe)."""
    n = echo(word[:-1], 20)
    return UsageError(
        f"`{echo(word, 20)}`: a number with a point is a budget, written `${n}` or `{n}.00`"
        f" (`{n}` alone is a number of calls), as {EXAMPLE}. Nothing changed."
    )


def _dashed(word: str) -> UsageError:
    """A word starting with a dash: a negative number, or an option (``--now``)."""
    if _NEGATIVE.fullmatch(word):
        return UsageError(
            f"`{echo(word, 20)}`: a trial's calls and budget are more than 0, as {EXAMPLE}."
            " Nothing changed."
        )
    return UsageError(
        f"`{echo(word, 20)}`: `breaker approve` takes no options: give a number of calls, a"
        f" budget, both or neither, as {EXAMPLE}. Nothing changed."
    )


def _calls(word: str) -> int:
    digits = word.replace(",", "").lstrip("0")
    if len(digits) > len(str(MAX_TRIAL_CALLS)):  # (a 5,000-digit word: int() refuses it)
        raise _too_many(word)
    calls = int(digits or "0")
    if calls < 1:
        raise UsageError(
            f"A trial of {calls} calls lets nothing through: give 1 to {MAX_TRIAL_CALLS:,}"
            " calls (or none: the policy's `half_open.trial_calls`). Nothing changed."
        )
    if calls > MAX_TRIAL_CALLS:
        raise _too_many(word)
    return calls


def _too_many(word: str) -> UsageError:
    return UsageError(
        f"`{echo(word, 20)}` calls is more than a trial takes: at most"
        f" {MAX_TRIAL_CALLS:,} (as `half_open.trial_calls`). Nothing changed."
    )


def _budget(word: str, *, typed: str) -> int:
    """The budget ``word`` says (``typed``: as it was typed, quoted in a refusal)."""
    try:
        micros = parse_usd(word)
    except ValueError as exc:
        amount = _AMOUNT.fullmatch(word)
        if amount and len(amount[1].replace(",", "").lstrip("0")) > 4:  # $10,000 and up
            raise _over_cap(f"`{echo(typed, 40)}`") from None  # not the parser's $1bn (L1)
        said = str(exc).replace(repr(word), repr(typed), 1)
        if len(typed) > 40:
            said = f"{typed[:40]!r}… is not an amount in USD"
        raise UsageError(f"The trial's budget: {echo(said, 120)}. Nothing changed.") from None
    if micros == 0:
        raise UsageError(
            "A trial's budget of $0 lets nothing through: give more than $0 (or none: the"
            " policy's `half_open.trial_budget`). Nothing changed."
        )
    if micros > MAX_TRIAL_BUDGET_MICROS:
        raise _over_cap(format_usd(micros, exact=True))
    return micros


def _over_cap(amount: str) -> UsageError:
    cap = format_usd(MAX_TRIAL_BUDGET_MICROS)
    return UsageError(
        f"{amount} is more than a trial's budget may be from chat (at most {cap}): for a"
        " larger one set `breakers.half_open.trial_budget` in the policy file. Nothing"
        " changed."
    )


def _twice(kinds: str, first: object, word: str) -> UsageError:
    return UsageError(
        f"Two {kinds} (`{first}` and `{echo(word, 20)}`): give at most one number of calls"
        f" and one budget, as {EXAMPLE}. Nothing changed."
    )
