"""API tokens: bound to one node of the hierarchy, stored hashed.

A token looks like ``ns_<id>_<secret>``; only the SHA-256 of the whole string is kept.
A token may expire (``expires_at``): from that instant it is refused as a revoked one is,
in words that say so.

A token is an agent's (reserves, settles, reports) or an operator's (``operator``:
:func:`operator_acts`; reserves nothing). Each is refused (403) where the other kind is
needed: :func:`require_operator`, :func:`require_agent`. A runaway agent's token must
not silence the alerts about itself, nor lift the breaker that stops it; no token
acknowledges or holds back the alert about a token's own misuse
(:data:`TOKEN_MISUSE_KIND`: :class:`SlackOnly`).

Example:
    >>> raw = new_token("tok_abc")
    >>> raw.startswith("ns_tok_abc_")
    True
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from typing import Any

from guards.errors import AuthError, GuardError, ScopeForbidden
from guards.events import ScopeViolation
from guards.reservation import iso
from guards.scopes import Scope
from guards.store import Tx

__all__ = [
    "ACTOR_PREFIX",
    "ALERTS_WHY",
    "BREAKERS_WHY",
    "LIVE_TOKEN",
    "MISSING_TOKEN",
    "TOKEN_MISUSE_KIND",
    "AgentTokenRequired",
    "OperatorTokenRequired",
    "SlackOnly",
    "Token",
    "authenticate",
    "authorize",
    "create_token",
    "expired",
    "hash_token",
    "operator_acts",
    "refuse_expired",
    "require_agent",
    "require_operator",
    "revoke_token",
]


def operator_acts(*, subtree: str = "its subtree") -> str:
    """What an operator's token does, for the texts that say so (``token create
    --operator`` and its ``--help``), as the README's operator tokens section does.

    Example:
        >>> operator_acts(subtree="acme/alice and below")[:58]
        'lists, acknowledges and silences the alerts of acme/alice '
    """
    return (
        f"lists, acknowledges and silences the alerts of {subtree}, and approves a breaker's"
        " trial, forces a breaker open or closes it there (/v1/alerts, /v1/silences,"
        " /v1/breakers)"
    )


#: why an agent's token is refused where an operator's is needed, by endpoint family
ALERTS_WHY = "an agent must not silence or acknowledge the alerts about itself"
BREAKERS_WHY = "an agent must not lift or approve the breaker that stops it"
#: a live token's id, scope, expiry (NULL: never) and whether it is an operator's, by the
#: hash of its raw bearer string; one past its expiry is still found here, so that its
#: refusal can say it expired
LIVE_TOKEN = (
    "SELECT id, scope, expires_at, operator FROM tokens WHERE hash = ? AND revoked_at IS NULL"
)
#: how the audit, an alert's acknowledgement and a silence name a token that acted:
#: ``token:<id>``
ACTOR_PREFIX = "token:"
#: the alert about a token's own misuse (a step outside its subtree): no token may
#: acknowledge one, and no silence a token made holds one (review23 H1)
TOKEN_MISUSE_KIND = "scope_violation"
_MEMO = "tokens"  # raw bearer string -> live Token, in Tx.memo
_MEMO_MAX = 10_000


@dataclass(frozen=True, slots=True)
class Token:
    id: str
    scope: str
    #: refused from this instant (POSIX seconds); ``math.inf``: never
    expires_at: float = math.inf
    #: an operator's token (alerts, silences, breakers), not an agent's (reservations)
    operator: bool = False

    @property
    def kind(self) -> str:
        """``operator`` or ``agent``, as ``token list`` shows it."""
        return "operator" if self.operator else "agent"


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def new_token(token_id: str) -> str:
    return f"ns_{token_id}_{secrets.token_urlsafe(24)}"


def create_token(
    tx: Tx,
    *,
    scope: str,
    actor: str = "cli",
    label: str | None = None,
    expires_in: int | None = None,
    operator: bool = False,
) -> tuple[Token, str]:
    """Create a token for ``scope``; returns it and the raw secret (shown once).

    ``expires_in``: seconds from now (rounded up to a whole second) after which it is
    refused; None: never. ``operator``: an operator's token (alerts, silences and breakers, no
    reservations), else an agent's. The audit row's detail names both.
    """
    node = Scope.parse(scope)
    token_id = "tok_" + secrets.token_hex(6)
    raw = new_token(token_id)
    now = tx.clock.now()
    expires = math.inf if expires_in is None else float(math.ceil(now) + expires_in)
    token = Token(token_id, node.path, expires, operator)
    # Only the columns a new token needs are named: `token create` also writes a database
    # some migrations behind (an agent's token that never expires names none of them; see
    # tests/unit/test_cli_db_files.py). The names are constants, never input.
    columns = ["id", "scope", "hash", "label", "created_at"]
    values: list[object] = [token_id, node.path, hash_token(raw), label, now]
    if expires_in is not None:
        columns.append("expires_at")
        values.append(token.expires_at)
    if operator:
        columns.append("operator")
        values.append(1)
    tx.execute(
        f"INSERT INTO tokens ({', '.join(columns)}) VALUES ({', '.join('?' * len(values))})",
        values,
    )
    lasts = "never expires" if expires_in is None else f"expires {iso(token.expires_at)}"
    tx.audit(
        actor=actor,
        action="token.create",
        target=node.path,
        after=token_id,
        detail=f"operator token, {lasts}" if operator else lasts,
    )
    return token, raw


def revoke_token(tx: Tx, *, token_id: str, actor: str = "cli") -> bool:
    """Revoke a token; False when no live token has that id.

    Audited as its creation was: on its scope, the token's id going (``tok_... → —``).
    """
    row = tx.one("SELECT scope FROM tokens WHERE id = ? AND revoked_at IS NULL", (token_id,))
    if row is None:
        return False
    tx.execute("UPDATE tokens SET revoked_at = ? WHERE id = ?", (tx.clock.now(), token_id))
    tx.audit(actor=actor, action="token.revoke", target=row[0], before=token_id)
    tx.memo.pop(_MEMO, None)
    return True


MISSING_TOKEN = (
    "missing token: send Authorization: Bearer <token> "
    "(create one with `nightshift token create <scope>`)"
)


def authenticate(tx: Tx, raw: str | None, *, expired_ok: bool = False) -> Token:
    """The live token for a raw bearer string.

    Live tokens are remembered in ``tx.memo``, which the store drops when another
    process (``nightshift token revoke``) commits; a revoke here drops it too. A
    remembered token is checked against its expiry at every call (one float compare).
    ``expired_ok``: an expired token is returned too (a settle or release of a call it
    reserved before it expired: :func:`refuse_expired` decides).

    Raises:
        AuthError: missing, unknown, revoked or (unless ``expired_ok``) expired token.
    """
    if not raw:
        raise AuthError(MISSING_TOKEN)
    known: dict[str, Token] | None = tx.memo.get(_MEMO)
    if known is None:
        known = tx.memo[_MEMO] = {}
    token = known.get(raw)
    if token is None:
        row = tx.one(LIVE_TOKEN, (hash_token(raw),))
        if row is None:
            raise AuthError(
                "unknown or revoked token: create one with `nightshift token create <scope>`"
            )
        if len(known) >= _MEMO_MAX:
            known.clear()
        expires = math.inf if row[2] is None else row[2]
        token = known[raw] = Token(row[0], row[1], expires, bool(row[3]))
    if not expired_ok and tx.clock.now() >= token.expires_at:
        raise AuthError(expired(token))
    return token


#: how long after a call's hold ended an expired token may still settle or release it (a
#: late settle, a replay whose answer was lost): the last hour, not forever (review31 M1)
EXPIRED_GRACE_SECONDS = 3600


def refuse_expired(
    tx: Tx, token: Token, *, reserved_by: str | None, hold_ended: float | None
) -> None:
    """AuthError for an expired token, unless it ends a call it reserved itself (before it
    expired) within :data:`EXPIRED_GRACE_SECONDS` of that call's hold's end: the money
    that call spent is recorded, never dropped (DESIGN: a settle always records what was
    actually spent). ``reserved_by`` None: no such reservation (401 all the same: an
    expired token does not learn which ids exist)."""
    now = tx.clock.now()
    if token.expires_at > now:
        return
    if reserved_by != token.id or hold_ended is None or now > hold_ended + EXPIRED_GRACE_SECONDS:
        raise AuthError(expired(token))


def expired(token: Token) -> str:
    """The refusal of a token past its expiry: when, and what to do (the command makes a
    token of the same kind: an operator's with ``--operator``)."""
    return (
        f"token {token.id} expired at {iso(token.expires_at)}; create a new one:"
        f" `{_create_command(token.scope, operator=token.operator)}`"
    )


def _create_command(scope: str, *, operator: bool) -> str:
    """The command that makes a token of ``scope``, an operator's with ``operator``."""
    return f"nightshift token create {scope}" + (" --operator" if operator else "")


def authorize(
    tx: Tx, token: Token, scope: Scope, *, path: str, why: str = "", named: str | None = None
) -> None:
    """Refuse (403, recorded as a ScopeViolation event) a scope outside the token's subtree.

    ``why`` ends the sentence "<scope> is outside it" when the scope is not the one the
    caller named (a conversation's heartbeat counts for its agent, say). ``named``: what
    the caller named instead of a scope (``reservation res_...``), said in the refusal and
    its alert in place of the scope, which the caller is not told.
    """
    if scope.within(token.scope):
        return
    tx.emit(
        ScopeViolation(
            at=tx.clock.now(),
            scope=scope.path,
            token_id=token.id,
            token_scope=token.scope,
            path=path,
            tried=named,
        )
    )
    raise ScopeForbidden(
        scope=named or scope.path, token_scope=token.scope, why=why, operator=token.operator
    )


class _WrongKind(GuardError):
    """A token of the other kind than the endpoint takes: 403, naming the token."""

    status = 403

    def __init__(self, token: Token, message: str) -> None:
        super().__init__(message)
        self.token_id = token.id

    def details(self) -> dict[str, Any]:
        return {"token_id": self.token_id}


class OperatorTokenRequired(_WrongKind):
    """An agent's token on an operator's endpoint (alerts, silences, breakers): 403;
    ``why`` says why the endpoint is not an agent's (:data:`ALERTS_WHY`)."""

    code = "operator_token_required"

    def __init__(self, token: Token, *, what: str, why: str = ALERTS_WHY) -> None:
        super().__init__(
            token,
            f"{what} takes an operator token; token {token.id} is an agent's ({why})."
            f" Create one with `nightshift token create {token.scope} --operator`",
        )


class AgentTokenRequired(_WrongKind):
    """An operator's token on an agent's endpoint (reservations): 403."""

    code = "agent_token_required"

    def __init__(self, token: Token, *, what: str) -> None:
        super().__init__(
            token,
            f"{what} takes an agent's token; token {token.id} is an operator's (it acts on"
            " alerts, silences and breakers, and spends nothing). Give the agent its own:"
            f" `nightshift token create {token.scope}`",
        )


class SlackOnly(GuardError):
    """What no token may do, only a person in Slack (the alert about a token's own
    misuse; a silence a person made): 403, the message naming the command to use."""

    status = 403
    code = "slack_only"


def require_operator(token: Token, *, what: str, why: str = ALERTS_WHY) -> Token:
    """``token`` when it is an operator's; else :class:`OperatorTokenRequired`.

    ``what`` starts the refusal: ``POST /v1/silences``; ``why`` says why an agent may not
    (:data:`BREAKERS_WHY` on the breakers' acts).
    """
    if not token.operator:
        raise OperatorTokenRequired(token, what=what, why=why)
    return token


def require_agent(token: Token, *, what: str) -> Token:
    """``token`` when it is an agent's; else :class:`AgentTokenRequired`."""
    if token.operator:
        raise AgentTokenRequired(token, what=what)
    return token
