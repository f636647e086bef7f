"""The simulated fleet: agents that call a pretend LLM through the real Python client.

Each agent acts on the simulated minute the demo gives it. Everything goes through
``GuardClient`` over HTTP to the real server: routing, reservations, settles,
validations and heartbeats. The LLM is pretend (deterministic token counts, a
provider outage on one model); the money and every decision about it are real.
"""

from __future__ import annotations

import contextlib
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from guards.client import Estimate, GuardClient, Usage
from guards.errors import AttemptsExhausted, BreakerOpen, BudgetExceeded, GuardError

__all__ = ["Fleet", "Outage", "PretendLLM", "Tally"]

# headlines the RSS agent "finds"; from 03:00 its broken dedup re-publishes them
HEADLINES = [
    "Central bank holds rates at 3.5% as inflation cools",
    "City council approves new bike lanes on Main Street",
    "Storm warning issued for the northern coast tonight",
    "Local team wins championship after 20-year drought",
    "Tech firm announces 1,200 new jobs in the region",
    "Museum reopens after two-year renovation",
    "Rail strike called off after late-night agreement",
    "Hospital opens new children's wing",
    "Farmers report record harvest despite dry summer",
    "University launches free online course in data science",
    "Airport expansion plan faces fresh legal challenge",
    "New study links daily walks to better sleep",
    "Water prices to rise 4% from January",
    "Film festival announces opening night lineup",
    "Startup raises $40M to build battery recycling plant",
    "Bridge repairs to close river crossing for three weeks",
    "School meals program extended to all primary pupils",
    "Police appeal for witnesses after warehouse fire",
    "Library system ends late fees for good",
    "Ferry operator adds winter service to the islands",
    "Solar farm approved on former airfield",
    "Mayor unveils plan for 5,000 affordable homes",
    "Zoo welcomes twin red panda cubs",
    "Heat pump grants to double next year",
    "Harbour tunnel opens two months early",
    "Regional orchestra names its first female conductor",
    "Wildfire season ends with fewest fires in a decade",
    "Supermarket chain pledges to cut plastic packaging by half",
    "Court rules in favour of tenants in landmark case",
    "Observatory spots comet visible to the naked eye next week",
    "Marathon organisers expect a record 40,000 runners",
    "Electric buses to replace diesel fleet by 2028",
    "Vineyard harvest delayed by late autumn rains",
    "Archaeologists uncover Roman mosaic under car park",
    "Broadband rollout reaches remote mountain villages",
    "Youth unemployment falls to its lowest level since 2008",
    "Chess prodigy, 12, becomes youngest national champion",
    "Coastal path reopens after landslide repairs",
]

SUPPORT_TASKS = [
    "Classify this ticket as billing, bug or feature request: 'I was charged twice'",
    "Extract the order number and email from this message",
    "Draft a friendly reply explaining our refund policy to a customer",
    "Summarize this support thread in two sentences",
    "Write a Python function that parses the CSV export and sums refunds per month",
    "Format this list of addresses as a table",
]
SUMMARY_TASKS = [
    "Summarize this meeting transcript in three bullet points",
    "Extract the action items and their owners from these notes",
    "Classify the sentiment of this review as positive, neutral or negative",
    "Translate this paragraph to German",
]
PLANNING_TASK = (
    "Plan a multi-step migration of our billing system to the new provider: analyse the"
    " risks, propose a rollout with checkpoints and a rollback strategy"
)


@dataclass
class Outage:
    """A provider outage: calls to ``model`` fail between ``start`` and ``end``."""

    model: str
    start: float
    end: float


class PretendLLM:
    """Answers with token counts; fails while its model has an outage."""

    def __init__(self, outages: list[Outage]) -> None:
        self.outages = outages
        self.rng = random.Random(7)

    def call(self, model: str, task: str, now: float, *, output_tokens: int | None = None) -> Usage:
        for outage in self.outages:
            if outage.model == model and outage.start <= now < outage.end:
                raise ConnectionError(f"{model}: 529 overloaded (the provider's outage)")
        # a well-estimated call: never more than the agent reserved for
        inp = 300 + 4 * len(task) + self.rng.randint(0, 300)
        out = output_tokens if output_tokens is not None else 150 + self.rng.randint(0, 350)
        return Usage(model, inp, out)


@dataclass
class Tally:
    """What happened to the fleet's calls, by kind (for the summary)."""

    calls: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    fallbacks: int = 0
    published: int = 0
    rejected: int = 0
    looper_refused_micros: int = 0
    conversation_capped: str | None = None


class Fleet:
    """The agents of ``acme``, each with its own token-bound client."""

    def __init__(self, *, url: str, tokens: dict[str, str], llm: PretendLLM, say: Any) -> None:
        self.url = url
        self.clients = {scope: GuardClient(url, token) for scope, token in tokens.items()}
        self.llm = llm
        self.say = say
        self.tally = Tally()
        self.rss_seen = 0
        self.looping = False
        self.looper_fixed = False
        self.summarizer_stuck = False
        self.chat_conversation = 42

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()

    # -- one call, the way an agent should make it -------------------------------------

    async def llm_call(
        self,
        agent: str,
        scope: str,
        task: str,
        now: float,
        *,
        model: str | None = None,
        output_tokens: int | None = None,
        task_id: str | None = None,
    ) -> bool:
        """Route (unless the model is pinned), reserve the ceiling, call, settle."""
        guard = self.clients[agent]
        route_id = None
        if model is None:
            decision = await guard.route(scope, task)
            model, route_id = decision["model"], decision.get("route_id")
            if "fall" in decision["reason"] and "breaker" in decision["reason"]:
                self.tally.fallbacks += 1
                if self.tally.fallbacks == 1:
                    self.say(
                        f"{agent.rsplit('/', 1)[-1]}'s task is routed to {model}: "
                        f"{decision['reason']}"
                    )
        ceiling = Estimate(model, 600 + 4 * len(task), output_tokens or 500)
        try:
            async with guard.reserve(
                scope, estimate=ceiling, task_id=task_id, route_id=route_id
            ) as hold:
                usage = self.llm.call(model, task, now, output_tokens=output_tokens)
                hold.settle(usage=usage)
        except (BudgetExceeded, BreakerOpen, AttemptsExhausted) as exc:
            self.tally.refused[f"{agent} {exc.code}"] += 1
            raise
        except ConnectionError:
            self.tally.calls[f"{agent} failed"] += 1
            return False
        self.tally.calls[agent] += 1
        return True

    # -- the agents ----------------------------------------------------------------------

    async def support_bot(self, minute: int, now: float) -> None:
        if minute % 10:
            return
        agent = "acme/bob/support-bot"
        task = SUPPORT_TASKS[(minute // 10) % len(SUPPORT_TASKS)]
        conversation = f"{agent}/c{minute // 60:02d}"
        with contextlib.suppress(GuardError):
            await self.llm_call(agent, conversation, task, now)

    async def summarizer(self, minute: int, now: float) -> None:
        if minute % 15 or self.summarizer_stuck:
            return
        agent = "acme/bob/summarizer"
        task = SUMMARY_TASKS[(minute // 15) % len(SUMMARY_TASKS)]
        with contextlib.suppress(GuardError):
            await self.llm_call(agent, agent, task, now)

    async def heartbeats(self, minute: int) -> None:
        if minute % 5:
            return
        for agent in (
            "acme/bob/support-bot",
            "acme/bob/summarizer",
            "acme/alice/rss-bot",
            "acme/carol/looper",
        ):
            if agent == "acme/bob/summarizer" and self.summarizer_stuck:
                continue
            await self.clients[agent].heartbeat(agent, status="ok")

    async def rss_bot(self, minute: int, now: float, *, broken_dedup: bool) -> None:
        """At :05, publish new headlines (hourly at night, every other hour by day);
        with its dedup broken, it publishes old ones again."""
        hour = minute // 60
        if minute % 60 != 5 or (hour >= 7 and hour % 2):
            return
        agent = "acme/alice/rss-bot"
        guard = self.clients[agent]
        if broken_dedup and self.rss_seen >= 4:
            # the "optimised" dedup: yesterday's items again, with a fresh timestamp
            old = [HEADLINES[(self.rss_seen - 4 + i) % len(HEADLINES)] for i in range(4)]
            items = [f"{h} (updated {hour:02d}:{i + 10:02d})" for i, h in enumerate(old)]
            items[1] = items[1].replace(" ", "  ").rstrip(")") + "!)"
        else:
            count = 4 if hour < 7 else 3
            items = [HEADLINES[(self.rss_seen + i) % len(HEADLINES)] for i in range(count)]
            self.rss_seen += count
        try:
            await self.llm_call(agent, agent, "Summarize these headlines: " + "; ".join(items), now)
        except GuardError:
            return
        result = await guard.validate(agent, "posts", items, expected_count=len(items))
        self.tally.published += len(result["accepted"])
        self.tally.rejected += len(result["rejected"])
        if result["rejected"]:
            reasons = Counter(r["reason"] for r in result["rejected"])
            self.say(
                f"rss-bot tried to publish {len(items)} items: "
                + ", ".join(f"{n} {reason.replace('_', '-')}" for reason, n in reasons.items())
                + f" rejected, {len(result['accepted'])} published"
            )

    async def looper(self, minute: int, now: float) -> None:
        """A planning agent. Stuck in a loop, it re-plans with the largest model every minute."""
        agent = "acme/carol/looper"
        if self.looping and not self.looper_fixed:
            task = PLANNING_TASK
            for _ in range(2):
                try:
                    await self.llm_call(
                        agent, agent, task, now, model="claude-opus-4-1", output_tokens=4000
                    )
                except BreakerOpen as exc:
                    if not self.tally.looper_refused_micros:
                        self.say(
                            f"looper's next call is refused before it starts: 503 "
                            f"{exc.code}, retry after {exc.retry_after}s"
                        )
                    # what it would have spent: two calls of about $0.35 each
                    self.tally.looper_refused_micros += 350_000
                    return
                except GuardError:
                    return
            return
        if minute % 20 == 0:
            with contextlib.suppress(GuardError):
                await self.llm_call(agent, agent, "Classify this ticket as urgent or not", now)

    async def chat_bot(self, minute: int, now: float, *, long_chat: bool) -> None:
        """A chat agent; one conversation (c42) goes on and on with a big context."""
        agent = "acme/alice/chat-bot"
        if long_chat and minute % 2 == 0:
            scope = f"{agent}/c{self.chat_conversation}"
            try:
                await self.llm_call(
                    agent,
                    scope,
                    "Continue the conversation: " + "x" * 9000,
                    now,
                    model="claude-sonnet-4-5",
                    output_tokens=2000,
                )
            except BudgetExceeded as exc:
                if self.tally.conversation_capped is None:
                    self.tally.conversation_capped = scope
                    self.say(
                        f"chat-bot's conversation c{self.chat_conversation} hit its cap "
                        f"({exc.level} {exc.window}): 402; the agent starts a fresh "
                        f"conversation c{self.chat_conversation + 1} and carries on"
                    )
                self.chat_conversation += 1
            except GuardError:
                pass
        elif minute % 30 == 0:
            with contextlib.suppress(GuardError):
                await self.llm_call(
                    agent,
                    f"{agent}/c{self.chat_conversation}",
                    "Answer the user's short question",
                    now,
                )
