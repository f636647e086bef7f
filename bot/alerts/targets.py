"""What ``/agent silence <target>`` names, read as ``/agent alerts <filter>`` reads it.

A target is one of:

- an alert id (``12``, ``#12``): that alert's fingerprint (``kind:scope``, exactly);
- an alert kind, or a family of kinds (``heartbeat_missed``; ``breaker_opened`` for the
  three breaker kinds), in any case: those alerts on every scope;
- ``kind:scope``: those alerts on the scope and everything below it
  (``heartbeat_missed:acme``); ``kind:model:<name>`` for a model's breaker alerts;
- a scope (``acme/alice``): every alert on it and below it; ``model:<name>``: a model's.

A silence on something Nightshift has not seen may be a typo that would silence
nothing: with ``known=True`` such a target raises :class:`UnseenTarget` (a scope no
agent has used, :mod:`bot.known_scopes`; a model it neither prices, routes to nor has a
breaker for), which carries what the command needs to say so and to suggest what was
probably meant; the command then makes the silence as asked (an agent about to be
deployed may be silenced ahead of time) with that warning first. An unknown kind before
a colon is refused. Lifting takes any well-formed target.

Example:
    >>> # silence_target(engine, tx, "heartbeat_missed:acme", known=True)
    >>> # SilenceTarget(fingerprint=None, scope='acme', alert_id=None, kind='heartbeat_missed')
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.alerts.model import fingerprint, kinds_named
from bot.blocks import echo
from bot.known_scopes import known_scope, unseen
from guards.breaker_kinds import MODEL_PREFIX, model_key
from guards.config_people import ALERT_KINDS, unknown_kind
from guards.errors import InvalidInput, NotFound
from guards.prices import MODEL_NAME_RULE, is_model_name
from guards.scopes import Scope, ScopeError
from guards.store import Tx

if TYPE_CHECKING:
    from bot.alerts.engine import AlertEngine

__all__ = [
    "MAX_ALERT_ID_DIGITS",
    "SilenceTarget",
    "UnseenTarget",
    "alert_number",
    "silence_target",
]

MAX_ALERT_ID_DIGITS = 18  # every alert id fits SQLite's 64-bit INTEGER
_NUMBERISH = re.compile(r"#?[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
TARGETS = (
    "an alert id (`42`), an alert kind (`heartbeat_missed`), `kind:scope`"
    " (`heartbeat_missed:acme`) or a scope (`acme/alice`)"
)


@dataclass(frozen=True, slots=True)
class SilenceTarget:
    """What a silence holds: one fingerprint; or a kind (or family), a scope subtree, or both.

    ``kind`` is the kind or family as typed, in lower case; ``scope`` None with a kind:
    every scope.
    """

    fingerprint: str | None
    scope: str | None
    alert_id: int | None = None
    kind: str | None = None

    @property
    def matches(self) -> str:
        """What it silences, in words: ``heartbeat_missed alerts on acme and below``."""
        if self.fingerprint:
            return self.fingerprint
        if self.kind is None:
            return f"{self.scope} and below"
        kinds = self.kind if self.kind in ALERT_KINDS else f"{self.kind}_*"
        where = "every scope" if self.scope is None else f"{self.scope} and below"
        return f"{kinds} alerts on {where}"

    @property
    def name(self) -> str:
        """The target as the operator would type it again (``#12``, ``heartbeat_missed:acme``)."""
        if self.alert_id is not None:
            return f"#{self.alert_id}"
        if self.fingerprint:
            return self.fingerprint
        if self.kind is None:
            return str(self.scope)
        return self.kind if self.scope is None else f"{self.kind}:{self.scope}"

    @property
    def alert_kind(self) -> str | None:
        """The kind the target is about (a fingerprint's own), or None for a whole scope."""
        if self.fingerprint:
            return self.fingerprint.partition(":")[0]
        return self.kind

    @property
    def where(self) -> str | None:
        """The scope the target is about (a fingerprint's own); None: every scope."""
        if self.fingerprint:
            return self.fingerprint.partition(":")[2]
        return self.scope

    @property
    def same_as(self) -> str | None:
        """The fingerprint a lift of this target also ends: ``kind:scope`` and alert
        ``#12`` with that fingerprint name the same thing (before migration 0018,
        ``kind:scope`` made a silence of that exact fingerprint)."""
        if self.fingerprint:
            return self.fingerprint
        if self.kind in ALERT_KINDS and self.scope is not None:
            return fingerprint(self.kind, self.scope)
        return None


class UnseenTarget(InvalidInput):
    """A silence on a scope or model nothing has used: it may silence nothing (a typo?).

    ``path`` is the scope as parsed (None for a model, whose ``suggestion`` is known
    already), ``prefix`` what went before it (``kind:``), so a suggestion reads as the
    operator would type it.
    """

    def __init__(
        self, message: str, *, path: str | None, prefix: str = "", suggestion: str = ""
    ) -> None:
        super().__init__("target", message)
        self.path = path
        self.prefix = prefix
        self.suggestion = suggestion


def alert_number(text: str) -> int | None:
    """``42`` or ``#42`` as an alert id (ASCII digits only); None when it is not one.

    Raises:
        NotFound: digits too many for any alert id.
    """
    digits = text.strip().removeprefix("#")
    if not (digits.isascii() and digits.isdigit()):
        return None
    if len(digits) > MAX_ALERT_ID_DIGITS:
        raise NotFound(f"there is no alert #{digits[:20]}…; `/agent alerts` lists the open ones")
    return int(digits)


def silence_target(
    engine: AlertEngine, tx: Tx, target: str, *, known: bool = False
) -> SilenceTarget:
    """Read ``target`` (see the module); with ``known``, refuse what would silence nothing.

    Raises:
        InvalidInput: a target that is none of those (UnseenTarget: nothing uses it).
        NotFound: no alert with that id.
    """
    text = target.strip()
    number = alert_number(text)
    if number is not None:
        alert = engine.get(tx, number)
        return SilenceTarget(alert.fingerprint, None, alert.id)
    if _NUMBERISH.fullmatch(text):  # meant as an id, surely: not a scope named "-1"
        raise InvalidInput(
            "target",
            f"`{echo(text, 20)}` is not an alert id: ids are whole numbers (`/agent alerts`"
            " lists them)",
        )
    kind_text, colon, path = text.partition(":")
    if not colon or kind_text == "model":  # a scope, a kind, or model:<name>
        kinds = kinds_named(text) if not colon else ()
        if kinds:
            return SilenceTarget(None, None, kind=text.lower())
        scope = _scope(engine, tx, text, known=known)
        return SilenceTarget(None, scope)
    if not kind_text:
        raise InvalidInput("target", "an alert kind goes before the colon: kind:scope")
    if not kinds_named(kind_text):  # a typo would silence nothing, and say it did
        raise InvalidInput("target", f"{unknown_kind(echo(kind_text))}; or silence a scope")
    kind = kind_text.lower()
    scope = _scope(engine, tx, path, known=known, prefix=f"{kind}:")
    return SilenceTarget(None, scope, kind=kind)


def _scope(engine: AlertEngine, tx: Tx, text: str, *, known: bool, prefix: str = "") -> str:
    """A scope or ``model:<name>`` as its path; with ``known``, one Nightshift knows."""
    if text.startswith(MODEL_PREFIX):
        name = text[len(MODEL_PREFIX) :]
        if name and not is_model_name(name):  # no alert could be about it
            raise InvalidInput("target", f"{prefix}model:<name>: {MODEL_NAME_RULE}")
        key = model_key(name)
        if known and key != MODEL_PREFIX and not _model_known(engine, tx, key):
            message, suggestion = _unknown_model(engine, key, prefix)
            raise UnseenTarget(message, path=None, prefix=prefix, suggestion=suggestion)
        if key != MODEL_PREFIX:
            return key
    try:
        path = Scope.parse(text).path
    except ScopeError as exc:
        raise InvalidInput("target", f"silence {TARGETS}: {exc}") from None
    if known and not known_scope(engine.policy, tx, path):
        one_word = not prefix and "/" not in path  # it could have been meant as a kind
        also = ", and it is not an alert kind" if one_word else ""
        kind = difflib.get_close_matches(text.lower(), ALERT_KINDS, n=1, cutoff=0.7)
        if kind and one_word:
            also = f", and it is not an alert kind (did you mean `{kind[0]}`?)"
        raise UnseenTarget(f"{unseen(path)}{also}", path=path, prefix=prefix)
    return path


def _models(engine: AlertEngine) -> set[str]:
    """Models Nightshift prices or routes to, in lower case."""
    routing = engine.policy.routing
    names = {t.model for t in routing.tiers.values()}
    names |= {m for model, rest in routing.fallbacks.items() for m in (model, *rest)}
    if engine.ledger is not None:
        names |= set(engine.ledger.prices.models())
    return {m.lower() for m in names}


def _model_known(engine: AlertEngine, tx: Tx, key: str) -> bool:
    """A model priced or routed to, with a breaker row, or with an alert on it."""
    if key.removeprefix(MODEL_PREFIX) in _models(engine):
        return True
    if tx.one("SELECT 1 FROM breakers WHERE key = ?", (key,)) is not None:
        return True
    return tx.one("SELECT 1 FROM alerts WHERE scope = ? LIMIT 1", (key,)) is not None


def _unknown_model(engine: AlertEngine, key: str, prefix: str) -> tuple[str, str]:
    """What to say of a model nothing knows, and the one probably meant (or "")."""
    name = key.removeprefix(MODEL_PREFIX)
    near = difflib.get_close_matches(name, sorted(_models(engine)), n=1, cutoff=0.75)
    guess = f" Did you mean `{prefix}model:{near[0]}`?" if near else ""
    said = f"`{echo(name, 80)}` is not a model Nightshift prices, routes to or has a breaker for"
    return f"{said} (a typo?)", guess
