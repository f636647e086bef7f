"""The built-in intent classifier: keyword and feature scoring, no network, no model.

A task is cut into lowercase words; every term of the :mod:`~guards.routing.lexicon`
it contains adds its weight to its intent (except nouns that only name the text an
explicit task verb works on: "Summarise this *blog post*" is a summary, not
drafting), and a few structural features add more
(a list of options "billing, technical or other" points to classification, three
or more distinct tool verbs to a multi-step tool workflow, a short question to a
lookup). The best-scoring intent gives the base tier; modifiers then move it: high
stakes or complexity up one tier each (at most two), brevity down one. The result
carries the terms that decided, so the route's ``reason`` can name them.

Only the first 4,000 and last 1,000 characters are read: instructions sit at the
start or the end of a prompt, and reading a 100 KB document would break the
one-millisecond budget per decision.

Example:
    >>> c = Classifier().classify("Translate this customer reply into Spanish.")
    >>> (c.intent, c.tier)
    ('translation', 'small')
    >>> c.explain()
    'intent translation (translat*, spanish) → small'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from guards.routing.lexicon import (
    AUTHORING_VERBS,
    INTENT_TIERS,
    LEXICON,
    OBJECT_NOUNS,
    TASK_VERBS,
    TOOL_VERBS,
)
from guards.routing.tiers import TierName, rank, shift

__all__ = ["GENERAL", "Classification", "Classifier", "window"]

GENERAL = "general"  # the intent of a task nothing in the lexicon matched
HEAD_CHARS = 4000
TAIL_CHARS = 1000
MIN_SCORE = 1.5  # below this, the task is "general" and goes to the default tier
CLOSE_CALL = 1.0  # a larger-tier intent this close to the winner takes the task
STAKES_UP = 2.0
COMPLEXITY_UP = 1.5
BREVITY_DOWN = 1.0
SHORT_HORIZON_DOWN = 1.5

_WORD = re.compile(r"[a-z0-9]+")
_OR = re.compile(r" or ")
_LIST_BEFORE_OR = re.compile(r"[\w-]+, (?:an? )?[\w-]+,?$|[\w-]+,$")
_CHOICE_AFTER_OR = re.compile(r"(?:an? )?[\w-]+\?")
_CLAUSE_END = re.compile(r"[.!?:;\n]")
_CHANNEL = re.compile(r"(?:^|\s)#[a-z][\w-]*")
# units of size: "40-page", "3,000 words", "25 user interviews"
# fmt: off
_SIZE_UNITS = frozenset({
    "page", "pages", "word", "words", "interviews", "transcripts", "reports", "contracts",
    "articles", "documents", "papers", "calls", "comments", "answers", "responses",
    "tickets", "rows",
})
# fmt: on
_SIZE = re.compile(r"\b(\d[\d,]*)[ -](?:[a-z]+ )?(" + "|".join(sorted(_SIZE_UNITS)) + r")\b")
# how many of a unit make a task too big for the small tier
_SIZE_MIN = {"page": 20, "pages": 20, "word": 1500, "words": 1500, "tickets": 1000, "rows": 10**6}
_SIZE_MIN_DOCUMENTS = 20
_QUESTION_START = frozenset(
    {"what", "which", "how", "is", "are", "does", "do", "who", "when", "where", "can"}
)

Hit = tuple[str, float, str]  # (group, weight, term)


def _strongest(evidence: list[tuple[float, str]], n: int = 3) -> list[str]:
    """The ``n`` heaviest terms, ties alphabetical: reasons must not depend on set order."""
    return [t for _, t in sorted(evidence, key=lambda e: (-e[0], e[1]))[:n]]


def window(task: str) -> str:
    """The part of a task that the classifier and the policy's rules read."""
    if len(task) <= HEAD_CHARS + TAIL_CHARS:
        return task
    return task[:HEAD_CHARS] + " \n " + task[-TAIL_CHARS:]


@dataclass(frozen=True, slots=True)
class Classification:
    """What the classifier made of a task, with the evidence."""

    intent: str
    tier: TierName
    base_tier: TierName
    evidence: tuple[str, ...] = ()
    modifiers: tuple[str, ...] = ()
    scores: Mapping[str, float] = field(default_factory=dict)

    def explain(self) -> str:
        """One line for a route's ``reason``: the intent, its evidence, each tier move."""
        head = f"intent {self.intent}"
        if self.evidence:
            head += f" ({', '.join(self.evidence)})"
        parts = [f"{head} → {self.base_tier}", *self.modifiers]
        return "; ".join(parts)


def _has_options(lower: str) -> bool:
    """A list of choices: "billing, technical or other", or "spam or ham?"."""
    for m in _OR.finditer(lower):
        before = _CLAUSE_END.split(lower[max(0, m.start() - 120) : m.start()])[-1]
        if _LIST_BEFORE_OR.search(before) or _CHOICE_AFTER_OR.match(lower, m.end()):
            return True
    return False


class Classifier:
    """Scores a task against the lexicon. Build once; :meth:`classify` is pure and fast."""

    def __init__(
        self,
        *,
        lexicon: Mapping[str, Mapping[str, float]] = LEXICON,
        intent_tiers: Mapping[str, TierName] = INTENT_TIERS,
        default_tier: TierName = "medium",
        task_verbs: frozenset[str] = TASK_VERBS,
        authoring_verbs: frozenset[str] = AUTHORING_VERBS,
        object_nouns: frozenset[str] = OBJECT_NOUNS,
    ) -> None:
        self.intent_tiers: dict[str, TierName] = {**intent_tiers, GENERAL: default_tier}
        self._task_verbs = task_verbs
        self._authoring_verbs = authoring_verbs
        self._object_nouns = object_nouns
        # "into a blog post", "as an article": the noun is what the task writes
        nouns = sorted(
            (" ".join(_WORD.findall(n)) for n in object_nouns), key=lambda n: (-len(n), n)
        )
        self._written_noun = re.compile(
            r"\b(?:into|as) an? (?:" + "|".join(map(re.escape, nouns)) + r")\b"
        )
        self._words: dict[str, list[Hit]] = {}
        self._prefixes: dict[str, list[Hit]] = {}
        self._phrases: dict[str, list[Hit]] = {}
        for group, terms in lexicon.items():
            for term, weight in terms.items():
                self._add(group, term, weight)
        self._prefix_lengths = sorted({len(p) for p in self._prefixes})
        # first word of each phrase -> the phrase lengths starting with it
        self._phrase_starts: dict[str, tuple[int, ...]] = {}
        for phrase in self._phrases:
            first, *rest = phrase.split(" ")
            lengths = {*self._phrase_starts.get(first, ()), len(rest) + 1}
            self._phrase_starts[first] = tuple(sorted(lengths))
        self._word_cache: dict[str, tuple[Hit, ...]] = {}

    def _add(self, group: str, term: str, weight: float) -> None:
        if term.endswith("*"):
            self._prefixes.setdefault(term[:-1], []).append((group, weight, term))
            return
        words = _WORD.findall(term.lower())
        table = self._words if len(words) == 1 else self._phrases
        table.setdefault(" ".join(words), []).append((group, weight, term))

    @property
    def intents(self) -> frozenset[str]:
        return frozenset(self.intent_tiers)

    def _word_hits(self, word: str) -> tuple[Hit, ...]:
        hits = self._word_cache.get(word)
        if hits is None:
            found = list(self._words.get(word, ()))
            for n in self._prefix_lengths:
                if n <= len(word):
                    found.extend(self._prefixes.get(word[:n], ()))
            hits = tuple(found)
            if len(self._word_cache) < 50_000:
                self._word_cache[word] = hits
        return hits

    def _hits(self, words: list[str]) -> set[Hit]:
        """Every lexicon term the words contain, once each.

        Each distinct word is looked up once (and cached across calls); phrase keys
        are built only where a word can start a phrase. Linear in the words.
        """
        found: set[Hit] = set()
        for word in set(words):
            found.update(self._word_hits(word))
        starts = self._phrase_starts
        phrases = self._phrases
        n = len(words)
        for i, word in enumerate(words):
            lengths = starts.get(word)
            if lengths is None:
                continue
            for length in lengths:
                if i + length <= n:
                    found.update(phrases.get(" ".join(words[i : i + length]), ()))
        return found

    def _only_the_task(self, hits: set[Hit], words: list[str]) -> set[Hit]:
        """``hits`` without the nouns that only name the object of an explicit task verb.

        "Summarise this blog post" keeps ``summar*`` and drops ``blog post``; "Write a
        blog post summarising ..." and "Summarise our quarter as a blog post" keep it.
        """
        terms = {term for _, _, term in hits}
        if (
            terms.isdisjoint(self._task_verbs)
            or terms.isdisjoint(self._object_nouns)
            or not terms.isdisjoint(self._authoring_verbs)
            or self._written_noun.search(" ".join(words))
        ):
            return hits
        return {h for h in hits if h[2] not in self._object_nouns or h[0].startswith("_")}

    def classify(self, task: str, *, intent: str | None = None) -> Classification:
        """Classify ``task``; a known ``intent`` is taken as given and only the modifiers apply."""
        lower = window(task).lower().replace("tl;dr", "tldr")
        words = _WORD.findall(lower)
        scores: dict[str, float] = {}
        evidence: dict[str, list[tuple[float, str]]] = {}
        for group, weight, term in self._only_the_task(self._hits(words), words):
            scores[group] = scores.get(group, 0.0) + weight
            evidence.setdefault(group, []).append((weight, term))
        self._structure(lower, words, scores, evidence)

        if intent is not None and intent in self.intent_tiers:
            chosen = intent
        else:
            chosen = self._best(scores)
        base = self.intent_tiers[chosen]
        tier, modifiers = self._modify(chosen, base, scores, evidence)
        terms = _strongest(evidence.get(chosen, []))
        return Classification(
            intent=chosen,
            tier=tier,
            base_tier=base,
            evidence=tuple(terms),
            modifiers=tuple(modifiers),
            scores={k: round(v, 2) for k, v in scores.items()},
        )

    def _structure(
        self,
        lower: str,
        words: list[str],
        scores: dict[str, float],
        evidence: dict[str, list[tuple[float, str]]],
    ) -> None:
        def add(group: str, weight: float, label: str) -> None:
            scores[group] = scores.get(group, 0.0) + weight
            evidence.setdefault(group, []).append((weight, label))

        if " or " in lower and _has_options(lower):
            add("classification", 1.5, "a list of options")
        verbs = TOOL_VERBS.intersection(words)
        if len(verbs) >= 3:
            add("tool_use", 1.5 * (len(verbs) - 2), f"{len(verbs)} tool verbs")
        if "#" in lower and _CHANNEL.search(lower):
            add("tool_use", 1.0, "a #channel")
        question = lower.split("?", 1)[0] if "?" in lower else ""
        if words and words[0] in _QUESTION_START and 0 < len(_WORD.findall(question)) <= 20:
            add("qa", 1.5, "a short question")
        for m in _SIZE.finditer(lower) if _SIZE_UNITS.intersection(words) else ():
            number = int(m.group(1).replace(",", ""))
            unit = m.group(2)
            if number >= _SIZE_MIN.get(unit, _SIZE_MIN_DOCUMENTS):
                add("_size", 1.0, f"{m.group(1)} {unit}")
                break

    def _best(self, scores: Mapping[str, float]) -> str:
        """The best-scoring intent; a close call goes to the intent of the larger tier.

        Under-routing costs quality (and often a retry), over-routing only money, so an
        intent of a larger tier within ``CLOSE_CALL`` points of the winner takes it.
        """
        ranked = sorted(
            (
                (score, rank(self.intent_tiers[name]), name)
                for name, score in scores.items()
                if not name.startswith("_") and score >= MIN_SCORE
            ),
            reverse=True,
        )
        if not ranked:
            return GENERAL
        top_score, top_rank, best = ranked[0]
        for score, tier_rank, name in ranked[1:]:
            if score < top_score - CLOSE_CALL:
                break
            if tier_rank > top_rank:
                top_rank, best = tier_rank, name
        return best

    def _modify(
        self,
        intent: str,
        base: TierName,
        scores: Mapping[str, float],
        evidence: Mapping[str, list[tuple[float, str]]],
    ) -> tuple[TierName, list[str]]:
        def terms(group: str) -> str:
            return ", ".join(_strongest(evidence[group]))

        ups: list[str] = []
        if scores.get("_stakes", 0.0) >= STAKES_UP:
            ups.append(f"high stakes ({terms('_stakes')})")
        if scores.get("_complexity", 0.0) >= COMPLEXITY_UP:
            ups.append(f"complexity ({terms('_complexity')})")
        if scores.get("_size", 0.0) > 0:
            ups.append(f"size ({terms('_size')})")
        ups = ups[:2]
        tier = shift(base, len(ups))
        moves = [f"up one tier for {why}" for why in ups]
        if ups:
            return tier, moves
        if base != "small" and scores.get("_brevity", 0.0) >= BREVITY_DOWN:
            tier = shift(base, -1)
            moves.append(f"down one tier for brevity ({terms('_brevity')})")
        horizon = scores.get("_short_horizon", 0.0)
        if intent in ("planning", "reasoning") and horizon >= SHORT_HORIZON_DOWN:
            steps = 2 if horizon >= 2 * SHORT_HORIZON_DOWN else 1
            tier = shift(base, -steps)
            moves.append(f"down for a short horizon ({terms('_short_horizon')})")
        return tier, moves
