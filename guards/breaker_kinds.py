"""Which breakers there are: their keys, the ones governing a scope, each kind's config.

A breaker is named by a key and has a kind:

- ``namespace`` (``acme``), ``user`` (``acme/alice``) and ``agent``
  (``acme/alice/rss-bot``): the three that govern a reservation's scope (a
  conversation is governed by its agent's);
- ``model`` (``model:claude-haiku-4-5``): a model failing for several agents.

:func:`configs_for` turns the policy's ``breakers`` section into one
:class:`~guards.breaker.BreakerConfig` per kind; :class:`BreakerLimits` gives each
breaker its own, from the longest ``breakers.scopes`` prefix of its key.

Example:
    >>> governing("acme/alice/bot/c42")
    (('acme', 'namespace'), ('acme/alice', 'user'), ('acme/alice/bot', 'agent'))
"""

from __future__ import annotations

from typing import Any

from guards.breaker import BreakerConfig
from guards.config import Breakers, Policy, SpendRate
from guards.errors import InvalidInput
from guards.prices import MODEL_NAME_RULE, is_model_name, undated
from guards.scopes import LEVELS, Scope, ScopeError

__all__ = [
    "MODEL_PREFIX",
    "BreakerLimits",
    "configs_for",
    "governing",
    "model_key",
    "model_keys",
    "parse_key",
]

MODEL_PREFIX = "model:"


def model_key(name: str) -> str:
    """A model's breaker key: its name in lower case, as reservations and routing name it.

    >>> model_key("GPT-4o")
    'model:gpt-4o'
    """
    return MODEL_PREFIX + name.strip().lower()


def model_keys(name: str) -> set[str]:
    """The breakers that govern calls naming ``name``: its own, and for a dated snapshot
    its model's (``model:gpt-4o`` stops ``gpt-4o-2024-08-06``).

    >>> sorted(model_keys("GPT-4o-2024-08-06"))
    ['model:gpt-4o', 'model:gpt-4o-2024-08-06']
    """
    return {model_key(name), model_key(undated(name))}


def parse_key(text: object) -> tuple[str, str]:
    """An operator's scope text to ``(key, kind)``: a conversation means its agent.

    >>> parse_key("acme/alice/bot/c42")
    ('acme/alice/bot', 'agent')
    >>> parse_key("model:Claude-Haiku-4-5")
    ('model:claude-haiku-4-5', 'model')

    A model's name is compared in lower case, as reservations name it.
    """
    if isinstance(text, str) and text.startswith(MODEL_PREFIX):
        name = text[len(MODEL_PREFIX) :]
        if not name:
            raise InvalidInput("scope", "write a model breaker as model:<name>")
        if not is_model_name(name):  # no reservation could name it, so nothing to stop
            raise InvalidInput("scope", f"model:<name>: {MODEL_NAME_RULE}")
        return model_key(name), "model"
    try:
        scope = Scope.parse(text)
    except ScopeError as exc:
        raise InvalidInput("scope", f"scope: {exc} (or model:<name>)") from None
    key = scope.agent() or scope.path
    return key, LEVELS[key.count("/")]


_GOVERNING: dict[str, tuple[tuple[str, str], ...]] = {}


def governing(path: str) -> tuple[tuple[str, str], ...]:
    """The breakers that govern a reservation's scope: namespace, user, agent."""
    keys = _GOVERNING.get(path)
    if keys is None:
        parts = path.split("/")
        keys = (
            (parts[0], "namespace"),
            (f"{parts[0]}/{parts[1]}", "user"),
            (f"{parts[0]}/{parts[1]}/{parts[2]}", "agent"),
        )
        if len(_GOVERNING) >= 50_000:  # conversations come and go: keep the cache bounded
            _GOVERNING.clear()
        _GOVERNING[path] = keys
    return keys


def configs_for(policy: Policy) -> dict[str, BreakerConfig]:
    """One breaker config per kind (agent, namespace, user, model) from the policy's top
    level (``breakers.scopes`` aside: :class:`BreakerLimits`)."""
    return _kinds(policy.breakers, "breakers")


def _kinds(cfg: Breakers, source: str) -> dict[str, BreakerConfig]:
    """One breaker config per kind from a ``breakers`` section (``source``: which)."""
    common: dict[str, Any] = {
        "cooldown_seconds": cfg.cooldown_seconds,
        "max_cooldown_seconds": cfg.max_cooldown_seconds,
        "trial_calls": cfg.half_open.trial_calls,
        "trial_budget_micros": cfg.half_open.trial_budget,
        "limits_from": source,
    }

    def spend(rate: SpendRate | None) -> dict[str, Any]:
        if rate is None:
            return {}
        return {"spend_max_micros": rate.max, "spend_per_seconds": rate.per_seconds}

    failures_mode = cfg.failures_half_open_mode or cfg.half_open.mode
    f, m = cfg.failures, cfg.model_failures
    return {
        "agent": BreakerConfig(
            consecutive=f.consecutive,
            rate=f.rate,
            window_calls=f.window_calls,
            min_calls=f.min_calls,
            slow_after=f.slow_after,
            modes={"spend": cfg.half_open.mode, "failures": failures_mode},
            **spend(cfg.spend_rate),
            **common,
        ),
        "namespace": BreakerConfig(
            modes={"spend": cfg.half_open.mode}, **spend(cfg.namespace_spend_rate), **common
        ),
        "user": BreakerConfig(**common),
        "model": BreakerConfig(
            consecutive=m.consecutive,
            rate=m.rate,
            window_calls=m.window_calls,
            min_calls=m.min_calls,
            slow_after=m.slow_after,
            min_sources=cfg.model_min_agents,
            modes={"failures": cfg.model_half_open_mode},
            trials_by_id=False,
            **common,
        ),
    }


# per prefix: each kind's config, and the attempts a task may make
_Limits = tuple[dict[str, BreakerConfig], int]
MAX_RESOLVED = 50_000  # breaker keys whose limits are remembered before they are dropped


class BreakerLimits:
    """Each breaker's limits: the policy's ``breakers``, or under the longest
    ``breakers.scopes`` prefix of its key (the keys it left out are the top level's).

    A policy without ``breakers.scopes`` costs a lookup per call; with it, a key is
    resolved once and remembered (bounded, as :func:`governing`'s paths are).

    Example:
        >>> from guards.config import parse_policy
        >>> p = parse_policy({"breakers": {"scopes": {"acme/a": {"max_attempts_per_task": 5}}}})
        >>> limits = BreakerLimits(p)
        >>> limits.max_attempts("acme/a/bot"), limits.max_attempts("acme/b/bot")
        (5, 3)
        >>> limits.config("acme/a/bot", "agent").limits_from
        'acme/a'
    """

    def __init__(self, policy: Policy) -> None:
        cfg = policy.breakers
        self._top: _Limits = (_kinds(cfg, "breakers"), cfg.max_attempts_per_task)
        self._prefixes: dict[str, _Limits] = {}
        for prefix in cfg.scopes:
            under = cfg.for_prefix(prefix)
            self._prefixes[prefix] = (_kinds(under, prefix), under.max_attempts_per_task)
        self._resolved: dict[str, _Limits] = {}

    def _of(self, key: str) -> _Limits:
        """The limits of ``key`` (a scope path): its longest prefix's, else the top's."""
        if not self._prefixes:
            return self._top
        found = self._resolved.get(key)
        if found is None:
            found = self._top
            parts = key.split("/")
            for depth in range(len(parts), 0, -1):
                prefix = "/".join(parts[:depth])
                if prefix in self._prefixes:
                    found = self._prefixes[prefix]
                    break
            if len(self._resolved) >= MAX_RESOLVED:
                self._resolved.clear()
            self._resolved[key] = found
        return found

    def top(self, kind: str) -> BreakerConfig:
        """The config of ``kind`` under the policy's top level ``breakers``."""
        return self._top[0][kind]

    def config(self, key: str, kind: str) -> BreakerConfig:
        """The config of the breaker ``key`` of ``kind`` (a model's: the top level's)."""
        if kind == "model":
            return self._top[0][kind]
        return self._of(key)[0][kind]

    def max_attempts(self, agent: str) -> int:
        """``max_attempts_per_task`` for the agent ``agent``."""
        return self._of(agent)[1]

    def longest_spend_window(self) -> int | None:
        """The longest spend-rate window of any agent or namespace (None: no spend limit)."""
        windows = [
            c.spend_per_seconds
            for kinds, _ in (self._top, *self._prefixes.values())
            for kind in ("agent", "namespace")
            if (c := kinds[kind]).spend_max_micros is not None
        ]
        return max(windows, default=None)
