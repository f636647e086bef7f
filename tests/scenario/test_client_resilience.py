"""The Python client when the server restarts, is down, or the caller is cancelled.

The money a block reported is never dropped: the block's settle keeps trying through a
restart and outlives a cancellation; a hold a cancelled reserve may have made is found
by its key and released. Mistakes that would drop money raise where they are made.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from guards.client import Estimate, GuardClient, Unavailable
from guards.errors import Conflict
from tests.fakes.ports import free_port
from tests.scenario.test_client import POLICY, held_and_spent

HAIKU = Estimate("claude-haiku-4-5", 1200, 800)


class Late(httpx.AsyncBaseTransport):
    """The real network, but the answers to paths containing ``part`` come ``after`` s late
    (the request has reached the server: only its answer is slow)."""

    def __init__(self, part: str, after: float) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.part, self.after = part, after

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if self.part in request.url.path:
            await asyncio.sleep(self.after)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class Unanswered(httpx.AsyncBaseTransport):
    """The real network, but the answers to paths containing ``part`` are lost: the
    request reaches the server, and the client reads a timeout."""

    def __init__(self, part: str) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.part = part

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if self.part in request.url.path:
            await response.aclose()
            raise httpx.ReadTimeout("timed out", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_restart_during_the_call_does_not_lose_its_spend(app_factory, tmp_path: Path):
    port, db = free_port(), tmp_path / "restart.db"
    env = {"NIGHTSHIFT_PORT": str(port)}
    first = await app_factory(POLICY, env=env, db=db)
    tok = await first.token("acme/alice/rss-bot")

    again = []

    async def restart() -> None:
        await first.ns.stop()  # refuses connections from here on
        await asyncio.sleep(1.5)  # longer than the 0.7 s a plain call keeps trying
        again.append(await app_factory(POLICY, env=env, db=db))

    async with GuardClient(first.url, tok) as guard:
        async with guard.reserve("acme/alice/rss-bot/c1", estimate=HAIKU) as hold:
            hold.settle(
                usage={"model": "claude-haiku-4-5", "input_tokens": 1100, "output_tokens": 640}
            )
            back = asyncio.create_task(restart())
            await asyncio.sleep(0.1)  # the deploy began while the LLM answered
        assert hold.result["charged_micros"] == 4300
        await back
    assert await held_and_spent(again[0], tok, "acme/alice/rss-bot/c1") == (0, 4300)


async def test_a_server_down_for_good_says_what_settle_to_send_later(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice/rss-bot")
    async with GuardClient(app.url, tok, patience=0.5) as guard:
        with pytest.raises(Unavailable) as raised:
            async with guard.reserve("acme/alice/rss-bot/c2", max_cost_micros=5000) as hold:
                hold.settle(actual_cost_micros=3000)
                await app.ns.stop()
    err = raised.value
    assert app.url in err.message and not err.maybe_sent  # refused: nothing reached it
    notes = " ".join(err.__notes__)
    assert f"guard.settle('{hold.reservation_id}'" in notes and "3000" in notes


async def test_a_timeout_during_the_blocks_settle_does_not_cut_it_short(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice/rss-bot")
    async with GuardClient(app.url, tok, transport=Late("/settle", 0.5)) as guard:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                async with guard.reserve("acme/alice/rss-bot/c3", max_cost_micros=5000) as hold:
                    hold.settle(actual_cost_micros=3000)
    # the settle reached the server before the timeout, and aclose waited for its answer
    assert await held_and_spent(app, tok, "acme/alice/rss-bot/c3") == (0, 3000)
    assert hold.result["charged_micros"] == 3000


async def test_a_reserve_cut_short_gives_back_the_hold_the_server_made(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice/rss-bot")
    async with GuardClient(app.url, tok, transport=Late("/v1/reservations", 0.4)) as guard:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                async with guard.reserve("acme/alice/rss-bot/c4", max_cost_micros=5000):
                    raise AssertionError("the block never runs")
    # the hold the lost answer named was found by its key and released
    assert await held_and_spent(app, tok, "acme/alice/rss-bot/c4") == (0, 0)
    rows = await app.store.fetch(
        "SELECT state FROM reservations WHERE scope = ?", ("acme/alice/rss-bot/c4",)
    )
    assert [r[0] for r in rows] == ["released"]


async def test_a_reserve_cut_short_with_the_callers_key_is_left_for_the_caller(app_factory):
    """review10 H1: the caller may send its key again to use the hold: it is not undone."""
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice/rss-bot")
    scope = "acme/alice/rss-bot/c9"
    async with GuardClient(app.url, tok, transport=Late("/v1/reservations", 0.4)) as guard:
        with pytest.raises(TimeoutError) as raised:
            async with (
                asyncio.timeout(0.2),
                guard.reserve(scope, max_cost_micros=5000, idempotency_key="run-1"),
            ):
                raise AssertionError("the block never runs")
        notes = " ".join(getattr(raised.value.__context__, "__notes__", ()))
        assert "idempotency_key 'run-1': reserve again with that key to use it" in notes
        async with guard.reserve(scope, max_cost_micros=5000, idempotency_key="run-1") as hold:
            hold.settle(actual_cost_micros=3000)
        assert hold.result["charged_micros"] == 3000
    assert await held_and_spent(app, tok, scope) == (0, 3000)
    rows = await app.store.fetch("SELECT state FROM reservations WHERE scope = ?", (scope,))
    assert [r[0] for r in rows] == ["settled"]


async def test_a_cancelled_block_gives_its_hold_back_without_making_the_caller_wait(app_factory):
    """review10 M2: the release goes on in the background; the caller's timeout holds."""
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice/rss-bot")
    loop = asyncio.get_running_loop()
    async with GuardClient(app.url, tok, transport=Late("/release", 1.0)) as guard:
        began = loop.time()
        with pytest.raises(TimeoutError):
            async with (
                asyncio.timeout(0.2),
                guard.reserve("acme/alice/rss-bot/c10", max_cost_micros=5000),
            ):
                await asyncio.sleep(5)  # the LLM call the timeout cuts short
        assert loop.time() - began < 0.9  # not the release's 1 s answer
    assert await held_and_spent(app, tok, "acme/alice/rss-bot/c10") == (0, 0)


class ProxyRestarting(httpx.AsyncBaseTransport):
    """A proxy in front of Nightshift answers 503 (an HTML page) ``times`` times first."""

    def __init__(self, times: int) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.left = times

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.left > 0:
            self.left -= 1
            return httpx.Response(503, text="<html>503 Service Temporarily Unavailable</html>")
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_proxys_503_is_tried_again_but_nightshifts_own_is_a_refusal(app_factory):
    """review10 M3: a proxy's 503 while Nightshift restarts is not a breaker."""
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice/rss-bot")
    async with GuardClient(app.url, tok, transport=ProxyRestarting(2)) as guard:
        answer = await guard.budget("acme/alice/rss-bot")
    assert answer["levels"]
    async with GuardClient(app.url, tok, transport=ProxyRestarting(9), retries=1) as guard:
        with pytest.raises(Unavailable, match="503 from a proxy"):
            await guard.budget("acme/alice/rss-bot")


async def test_nothing_listening_is_unavailable_naming_the_url():
    url = f"http://127.0.0.1:{free_port()}"
    async with GuardClient(url, "ns_tok_x", retries=1) as guard:
        with pytest.raises(Unavailable, match=r"127\.0\.0\.1") as raised:
            await guard.budget("acme")
    assert raised.value.attempts == 2 and not raised.value.maybe_sent
    assert "ConnectError" in raised.value.message


@pytest.mark.parametrize("url", ["localhost:3000", "127.0.0.1:3000", "ftp://x"])
def test_a_url_without_http_is_refused_at_once(url):
    with pytest.raises(ValueError, match="must start with http:// or https://"):
        GuardClient(url, "ns_tok_x")


def test_a_token_is_read_as_printed_and_never_echoed():
    GuardClient("http://127.0.0.1:1", "ns_tok_abc\n")  # a file's trailing newline is fine
    for bad in ("ns_tok_abc def", "ns_tok_\x00secret", "   "):
        with pytest.raises(ValueError, match="as `nightshift token create` printed it") as raised:
            GuardClient("http://127.0.0.1:1", bad)
        assert "secret" not in str(raised.value) and "abc" not in str(raised.value)


async def test_settling_after_the_block_raises_instead_of_dropping_the_money(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice/rss-bot")
    async with GuardClient(app.url, tok) as guard:
        async with guard.reserve("acme/alice/rss-bot/c5", estimate=HAIKU) as hold:
            pass  # the settle is one indent too far out
        with pytest.raises(RuntimeError, match=r"has ended, .*\(released\): call hold.settle"):
            hold.settle(actual_cost_micros=4300)


async def test_a_hold_settles_once_and_only_in_whole_micros(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice/rss-bot")
    guard = GuardClient(app.url, tok)
    async with guard, guard.reserve("acme/alice/rss-bot/c6", max_cost_micros=5000) as hold:
        with pytest.raises(ValueError, match=r"whole micro-dollars.*math.ceil"):
            hold.settle(actual_cost_micros=12.5)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="whole micro-dollars"):
            hold.settle(actual_cost_micros=-5)
        hold.settle(actual_cost_micros=100)
        hold.settle(actual_cost_micros=100)  # the same again is harmless
        with pytest.raises(RuntimeError, match="settled already in this block"):
            hold.settle(actual_cost_micros=200)
    assert await held_and_spent(app, tok, "acme/alice/rss-bot/c6") == (0, 100)


async def test_a_hold_settled_by_id_inside_the_block_ends_quietly(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice/rss-bot")
    async with GuardClient(app.url, tok) as guard:
        async with guard.reserve("acme/alice/rss-bot/c7", max_cost_micros=5000) as hold:
            await guard.settle(
                hold.reservation_id, {"actual_cost_micros": 10, "outcome": "success"}
            )
        assert hold.result["state"] == "settled"
        released = await guard.create_reservation("acme/alice/rss-bot/c7", max_cost_micros=10)
        await guard.release(released["reservation_id"])
        with pytest.raises(Conflict):  # a real conflict still raises
            await guard.settle(released["reservation_id"], actual_cost_micros=5)
    assert await held_and_spent(app, tok, "acme/alice/rss-bot/c7") == (0, 10)


async def test_a_dated_model_name_from_an_sdk_is_priced_as_its_model(app_factory):
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice/rss-bot")
    async with GuardClient(app.url, tok) as guard:
        async with guard.reserve("acme/alice/rss-bot/c8", estimate=HAIKU) as hold:
            reply_usage = {
                "model": "claude-haiku-4-5-20251001",
                "input_tokens": 1100,
                "output_tokens": 640,
            }
            hold.settle(usage=reply_usage)
        assert hold.result["charged_micros"] == 4300  # not the 5200 ceiling
        est = Estimate("gpt-4o-2024-08-06", 1000, 100)
        async with guard.reserve("acme/alice/rss-bot/c8", estimate=est) as hold:
            assert hold.held_micros == 3500  # 1000 x $2.50/M + 100 x $10/M
        every = await guard.breakers(all=True)
        not_closed = await guard.breakers()
    assert every == (await app.request("GET", "/v1/breakers?all=1", token=tok)).json()
    assert not_closed == (await app.request("GET", "/v1/breakers", token=tok)).json()
    assert every != not_closed  # the agent's closed breaker is listed only with all


async def test_a_settle_whose_answers_were_slow_says_it_may_be_recorded(app_factory):
    """audit19 client 3: the note said the settle "was not recorded" when a try had
    reached the server (it was), and the error asked whether Nightshift was running."""
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice/rss-bot")
    lost = Unanswered("/settle")
    async with GuardClient(app.url, tok, retries=1, patience=0.5, transport=lost) as g:
        with pytest.raises(Unavailable) as raised:
            async with g.reserve("acme/alice/rss-bot/c5", max_cost_micros=5000) as hold:
                hold.settle(actual_cost_micros=3000)
    err = raised.value
    assert err.maybe_sent
    assert "did not answer in time" in err.message and "is it running" not in err.message
    notes = " ".join(err.__notes__)
    assert f"{hold.reservation_id}'s settle may have been recorded" in notes
    assert "was not recorded" not in notes
    assert await held_and_spent(app, tok, "acme/alice/rss-bot/c5") == (0, 3000)  # it was


async def test_a_plain_settle_of_a_usage_without_a_model_asks_for_the_model(app_factory):
    """audit19 client 4: it blamed a hold the plain method does not have."""
    app = await app_factory(POLICY)
    tok = await app.token("acme/alice/rss-bot")
    async with GuardClient(app.url, tok) as guard:
        answer = await guard.create_reservation("acme/alice/rss-bot/c6", max_cost_micros=5000)
        with pytest.raises(ValueError) as raised:
            await guard.settle(
                answer["reservation_id"], usage={"input_tokens": 1, "output_tokens": 1}
            )
    assert "give the usage its model" in str(raised.value) and "hold" not in str(raised.value)
