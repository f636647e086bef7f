"""Operator tokens (``token create <scope> --operator``): made, listed, told apart from an
agent's when authenticated, and each kept to its own calls."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bot.cli import main
from guards.errors import AuthError, ScopeForbidden
from guards.scopes import Scope
from guards.store import Store, Tx
from guards.tokens import (
    AgentTokenRequired,
    OperatorTokenRequired,
    authenticate,
    authorize,
    create_token,
    require_agent,
    require_operator,
    revoke_token,
)

pytestmark = pytest.mark.usefixtures("keep_logging")


async def cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_token_create_operator_is_listed_as_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "ns.db")
    assert await cli("token", "create", "acme/alice", "--operator", "--db", db) == 0
    out = capsys.readouterr().out
    assert "an operator token: it lists, acknowledges and silences the alerts of acme/alice" in out
    assert "forces a breaker open or closes it there" in out  # recheck25 L1: breakers too
    assert out.splitlines()[-1].startswith("token: ns_tok_")  # its last word stays the token
    assert await cli("token", "create", "acme/alice/bot", "--db", db) == 0
    assert "an operator token" not in capsys.readouterr().out
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT scope, operator FROM tokens ORDER BY scope").fetchall()
        audit = conn.execute("SELECT detail FROM audit WHERE action = 'token.create'").fetchall()
    assert rows == [("acme/alice", 1), ("acme/alice/bot", 0)]
    assert sorted(d for (d,) in audit) == ["never expires", "operator token, never expires"]

    assert await cli("token", "list", "--db", db) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert lines[0][6:9] == ["state", "kind", "label"]
    kinds = {line[1]: line[-1] for line in lines[1:]}  # (no label: the kind is last)
    assert kinds == {"acme/alice": "operator", "acme/alice/bot": "agent"}


async def test_authenticate_tells_an_operator_s_token_from_an_agent_s(store: Store) -> None:
    (op, op_raw), (agent, agent_raw) = await store.write(
        lambda tx: (
            create_token(tx, scope="acme/alice", operator=True),
            create_token(tx, scope="acme/alice"),
        )
    )
    assert op.operator and op.kind == "operator" and not agent.operator

    def both(tx: Tx) -> tuple[bool, ...]:
        # twice: the second answer comes from the remembered token
        return tuple(authenticate(tx, raw).operator for raw in (op_raw, op_raw, agent_raw))

    assert await store.write(both) == (True, True, False)
    token = await store.write(lambda tx: authenticate(tx, op_raw))
    assert require_operator(token, what="GET /v1/alerts") is token
    with pytest.raises(AgentTokenRequired) as no_agent:
        require_agent(token, what="POST /v1/reservations")
    assert no_agent.value.status == 403 and no_agent.value.code == "agent_token_required"
    assert f"`nightshift token create {op.scope}`" in no_agent.value.message
    agent_token = await store.write(lambda tx: authenticate(tx, agent_raw))
    with pytest.raises(OperatorTokenRequired) as no_op:
        require_operator(agent_token, what="POST /v1/silences")
    assert no_op.value.code == "operator_token_required"
    assert no_op.value.message.startswith("POST /v1/silences takes an operator token")
    assert "`nightshift token create acme/alice --operator`" in no_op.value.message

    # an operator's token acts only inside its subtree, as an agent's does
    await store.write(lambda tx: authorize(tx, token, Scope("acme/alice/bot"), path="/x"))
    with pytest.raises(ScopeForbidden):
        await store.write(lambda tx: authorize(tx, token, Scope("acme/bob"), path="/x"))
    # and is revoked as one is
    assert await store.write(lambda tx: revoke_token(tx, token_id=op.id))
    with pytest.raises(AuthError):
        await store.write(lambda tx: authenticate(tx, op_raw))
