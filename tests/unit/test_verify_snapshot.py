"""`ledger verify` reads one snapshot: a server committing between its reads changes nothing."""

from __future__ import annotations

from guards.clock import ManualClock
from guards.config import parse_policy
from guards.ledger import Ledger, ReserveRequest, SettleRequest
from guards.migrations import apply_migrations, connect
from guards.store import Tx
from guards.tokens import Token
from guards.verify import verify

POLICY = parse_policy({"budgets": {"defaults": {"agent": {"day": "10.00"}}}})
TOKEN = Token("tok_test", "acme")


class Server:
    """Another connection to the same file, committing ledger writes as the server would."""

    def __init__(self, path: str) -> None:
        self.conn = connect(path)
        apply_migrations(self.conn, now=0.0)
        self.conn.execute(
            "INSERT INTO tokens (id, scope, hash, created_at) VALUES ('tok_test', 'acme', 'h', 0)"
        )
        self.ledger = Ledger(policy=POLICY)
        self.clock = ManualClock(1_767_225_600.0)
        self.n = 0

    def write(self, fn):
        self.conn.execute("BEGIN IMMEDIATE")
        tx = Tx(self.conn, self.clock)
        result = fn(tx)
        tx.flush()
        self.conn.execute("COMMIT")
        for callback in tx.after_commit:
            callback()
        return result

    def reserve_and_settle(self) -> None:
        self.n += 1
        req = ReserveRequest(scope="acme/a/bot", idempotency_key=f"k{self.n}", max_cost_micros=900)
        _, answer = self.write(lambda tx: self.ledger.reserve(tx, token=TOKEN, req=req))
        done = SettleRequest(outcome="success", actual_cost_micros=700)
        rid = answer["reservation_id"]
        self.write(lambda tx: self.ledger.settle(tx, token=TOKEN, res_id=rid, req=done))


class Interleaved:
    """The checker's connection; the server commits after each of its queries."""

    def __init__(self, conn, server: Server) -> None:
        self.conn = conn
        self.server = server

    def execute(self, sql, params=()):
        cursor = self.conn.execute(sql, params)
        if sql.lstrip().upper().startswith("SELECT"):
            rows = cursor.fetchall()  # read it all before the next commit, as SQLite steps
            self.server.reserve_and_settle()
            return iter(rows)
        return cursor


def test_verify_reads_one_snapshot_while_another_connection_commits(tmp_path):
    path = str(tmp_path / "live.db")
    server = Server(path)
    for _ in range(5):
        server.reserve_and_settle()
    checker = connect(path)
    report = verify(Interleaved(checker, server))  # type: ignore[arg-type]
    assert report.problems == []
    assert report.reservations == 5  # the snapshot taken at its first read
    # one more was committed after each of the first check's queries
    assert verify(checker).reservations > 5
    assert verify(checker).ok


def test_a_settled_call_relabelled_as_released_is_caught(tmp_path):
    """audit10 L6: its money still added up, so only the state gave it away."""
    server = Server(str(tmp_path / "ledger.db"))
    server.reserve_and_settle()
    server.conn.execute("UPDATE reservations SET state = 'released'")
    report = verify(connect(str(tmp_path / "ledger.db")))
    assert not report.ok
    assert any(
        "state released but charged 700; only a settle charges" in p for p in report.problems
    )


def test_a_journal_past_sqlites_largest_integer_is_reported_not_a_crash(tmp_path):
    """review25 M1: the journal was summed per reservation in SQL; past 2^63 SQLite's SUM
    stopped the check ("could not check", exit 2) where the old check said what was wrong."""
    conn = connect(str(tmp_path / "broken.db"))
    apply_migrations(conn, now=0.0)
    conn.execute(
        "INSERT INTO reservations (id, token_id, idempotency_key, request_hash, scope, state,"
        " held_micros, charged_micros, period_day, period_week, period_month, created_at,"
        " expires_at) VALUES ('r1', 't', 'k', 'h', 'ns/a', 'held', ?, 0, '2026-01-01', 'w',"
        " 'm', 0, 0)",
        (2**62,),
    )
    for _ in range(2):  # two holds of 2^62: the sum is 2^63, one past SQLite's largest
        conn.execute(
            "INSERT INTO journal (at, reservation_id, kind, held_delta, spent_delta)"
            " VALUES (0, 'r1', 'hold', ?, 0)",
            (2**62,),
        )
    report = verify(conn)
    assert not report.ok
    assert f"r1: the journal holds {2**63}, state held wants {2**62}" in report.problems


def test_a_usage_counter_that_drifted_from_the_journal_is_caught(tmp_path):
    """audit27 mutation F9: the counters budgets enforce, against the journal's sums."""
    server = Server(str(tmp_path / "ledger.db"))
    server.reserve_and_settle()
    assert verify(connect(str(tmp_path / "ledger.db"))).ok
    server.conn.execute(
        "UPDATE usage_daily SET spent_micros = spent_micros + 1 WHERE scope = 'acme'"
    )
    report = verify(connect(str(tmp_path / "ledger.db")))
    assert not report.ok
    assert report.problems == [
        "usage acme on 2026-01-01: stored spent,held [701, 0]; the journal says [700, 0]"
    ]
