"""What the Raise budget form showed, and the refusal when a limit changed since.

The form carries the limits it showed in its ``private_metadata``, as JSON:
``{"scope": "acme/m/bot", "shown": {"day": 50000}}`` (micros per window; a window
without a limit is absent). On submit, a window whose limit is no longer the one the
form showed changes nothing: the handler raises :class:`StaleForm`, which says what
the limit is now and who set it when. The transport shows that under the amount and
keeps :attr:`StaleForm.metadata` (the form showing the limits as they are now) as the
form's metadata, so the same submit again goes through: the person has seen the new
limit by then. A form opened before forms carried their limits (its metadata is the
bare scope) is not checked.

Example:
    >>> form = RaiseForm("acme/m/bot", {"day": 50_000})
    >>> RaiseForm.decode(form.encode()) == form
    True
    >>> RaiseForm.decode("acme/m/bot").shown is None
    True
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from guards.errors import InvalidInput
from guards.money import parse_usd, usd_for

__all__ = ["SMALLEST", "RaiseForm", "StaleForm", "exact_amount", "form_amount", "limit_changed"]

# amounts are exact USD to the micro-dollar (README: Money): the smallest a limit can be
SMALLEST = "$0.000001 (one micro-dollar)"


def exact_amount(text: str) -> int:
    """Micro-dollars of an amount typed in USD (``$5``, ``2.50``, ``0``), exact; InvalidInput
    on ``amount`` for what is not one, naming the smallest when it is finer than a
    micro-dollar. The one rule of ``budget set``, ``credit`` and the Raise budget form
    (review28 R2 L2: the command said "more than six decimals" alone).

    Example:
        >>> exact_amount("20.000001")
        20000001
        >>> try:
        ...     exact_amount("0.0000001")
        ... except InvalidInput as exc:
        ...     print(exc)
        '0.0000001' has more than six decimals: amounts are exact to the micro-dollar, \
$0.000001 (one micro-dollar) at the least
    """
    try:
        return parse_usd(text)
    except ValueError as exc:
        said = str(exc) if len(text) <= 40 else f"{text[:40]!r}… is not an amount in USD"
        if "six decimals" in said:
            said += f": amounts are exact to the micro-dollar, {SMALLEST} at the least"
        raise InvalidInput("amount", said) from None  # (it names the text: once is enough)


def form_amount(text: str, *, window: str = "day") -> int:
    """Micro-dollars of the Raise budget form's amount (:func:`exact_amount`); $0 is
    refused there: the form raises a budget, and a $0 limit, which stops the scope, is
    set with ``/agent budget set <scope> 0 <window>``, which the refusal names (in the
    150 characters Slack shows under a field, so without the scope).

    Example:
        >>> try:
        ...     form_amount("0")
        ... except InvalidInput as exc:
        ...     print(exc)
        a raised budget is more than $0: $0.000001 (one micro-dollar) at the least (a $0 \
limit, a stop, is `/agent budget set <scope> 0 day`)
    """
    micros = exact_amount(text)
    if micros <= 0:
        raise InvalidInput(
            "amount",
            f"a raised budget is more than $0: {SMALLEST} at the least (a $0 limit, a stop, is"
            f" `/agent budget set <scope> 0 {window}`)",
        )
    return micros


@dataclass(frozen=True)
class RaiseForm:
    """The scope of a Raise budget form and the limits it showed (None: not known)."""

    scope: str
    shown: dict[str, int] | None = None

    def encode(self) -> str:
        return json.dumps({"scope": self.scope, "shown": self.shown}, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> RaiseForm:
        """The form's metadata back; anything but our JSON is a bare scope (older forms)."""
        if not text.startswith("{"):
            return cls(text)
        try:
            data = json.loads(text)
        except ValueError:
            return cls(text)
        shown = data.get("shown") if isinstance(data, dict) else None
        if not isinstance(shown, dict) or not all(
            isinstance(k, str) and type(v) is int for k, v in shown.items()
        ):
            shown = None
        scope = data.get("scope") if isinstance(data, dict) else None
        return cls(scope if isinstance(scope, str) else text, shown)

    def limit(self, window: str) -> int | None:
        """The limit the form showed for ``window`` (None: no limit)."""
        return (self.shown or {}).get(window)


class StaleForm(InvalidInput):
    """A form was submitted on something that changed after it opened; nothing changed.

    ``now`` says what it is now ("the day limit is now $5.00 (set by <@U1> at 12:16)"),
    ``retry`` what a second submit does ("set $1.00 anyway"); ``metadata`` is the
    form's metadata from now on, with which that second submit goes through.
    """

    def __init__(self, field: str, *, now: str, retry: str, metadata: str) -> None:
        super().__init__(field, f"{now}; submit again to {retry}")
        self.now = now
        self.retry = retry
        self.metadata = metadata


def limit_changed(
    form: RaiseForm,
    *,
    window: str,
    limits: dict[str, int],
    amount_micros: int,
    set_by: str | None,
    set_at: str | None,
) -> StaleForm:
    """The refusal of a submit whose ``window`` limit is no longer the one ``form`` showed.

    ``limits``: the scope's limits now; ``set_by`` / ``set_at`` (a clock time): who set
    the window's limit at run time (None: it comes from the policy file).

    Example:
        >>> stale = limit_changed(
        ...     RaiseForm("acme/m/bot", {"day": 50_000}), window="day", limits={"day": 5_000_000},
        ...     amount_micros=1_000_000, set_by="U0DANA", set_at="12:16")
        >>> stale.now
        'the day limit is now $5.00 (set by <@U0DANA> at 12:16)'
        >>> stale.retry
        'lower it to $1.00 anyway'
    """
    now = limits.get(window)
    usd = usd_for(amount_micros, *(m for m in (now, form.limit(window)) if m is not None))
    if now is None:
        said = f"the {window} budget has no limit now"
    else:
        said = f"the {window} limit is now {usd(now)}"
        if set_by is not None:
            said += f" (set by <@{set_by}>" + (f" at {set_at})" if set_at else ")")
        else:
            said += " (from the policy file)"
    verb = "lower it to" if now is not None and amount_micros < now else "set"
    metadata = RaiseForm(form.scope, dict(limits)).encode()
    return StaleForm(
        "amount", now=said, retry=f"{verb} {usd(amount_micros)} anyway", metadata=metadata
    )
