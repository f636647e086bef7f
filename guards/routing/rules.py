"""Policy rules (``routing.rules``), compiled once and matched before the classifier.

A rule matches when every condition it names holds: its ``intent`` equals the
task's intent, one of its ``keywords`` occurs as a whole word or phrase, its
``pattern`` is found, the task's scope is within its ``scope``. The first matching
rule decides the tier. Keywords and patterns are searched in the same window the
classifier reads (the first 4,000 and last 1,000 characters).

Example:
    >>> from guards.config import RoutingRule
    >>> from guards.scopes import Scope
    >>> rules = compile_rules([RoutingRule(tier="large", name="legal", keywords=["contract"])])
    >>> match_rule(rules, text="Review this Contract", intent="review", scope=Scope("a/b/c"))
    (CompiledRule(label="rule 'legal'", ...), "keyword 'Contract'")
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from guards.config import RoutingRule
from guards.scopes import Scope

__all__ = ["CompiledRule", "compile_rules", "match_rule"]


@dataclass(frozen=True, slots=True)
class CompiledRule:
    label: str
    rule: RoutingRule
    keywords: re.Pattern[str] | None
    pattern: re.Pattern[str] | None

    def __repr__(self) -> str:
        return f"CompiledRule(label={self.label!r}, ...)"

    def match(self, *, text: str, intent: str, scope: Scope) -> str | None:
        """What made this rule match (for the reason), or None when it does not."""
        rule = self.rule
        found: list[str] = []
        if rule.scope is not None:
            if not scope.within(rule.scope):
                return None
            found.append(f"scope {rule.scope}")
        if rule.intent is not None:
            if intent != rule.intent:
                return None
            found.append(f"intent {rule.intent}")
        if self.keywords is not None:
            m = self.keywords.search(text)
            if m is None:
                return None
            found.append(f"keyword {m.group(0)!r}")
        if self.pattern is not None:
            m = self.pattern.search(text)
            if m is None:
                return None
            found.append(f"pattern {rule.pattern!r}")
        return ", ".join(found)


def compile_rules(rules: Sequence[RoutingRule]) -> tuple[CompiledRule, ...]:
    """Compile the policy's rules; the policy already checked that patterns compile."""
    out = []
    for i, rule in enumerate(rules, start=1):
        keywords = None
        if rule.keywords:
            alternatives = "|".join(
                r"\s+".join(re.escape(w) for w in k.split()) for k in rule.keywords
            )
            keywords = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
        label = f"rule {rule.name!r}" if rule.name else f"rule #{i}"
        pattern = re.compile(rule.pattern) if rule.pattern is not None else None
        out.append(CompiledRule(label=label, rule=rule, keywords=keywords, pattern=pattern))
    return tuple(out)


def match_rule(
    rules: Sequence[CompiledRule], *, text: str, intent: str, scope: Scope
) -> tuple[CompiledRule, str] | None:
    """The first rule that matches, with what matched; None when none does."""
    for compiled in rules:
        why = compiled.match(text=text, intent=intent, scope=scope)
        if why is not None:
            return compiled, why
    return None
