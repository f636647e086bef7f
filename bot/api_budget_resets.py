"""``resets_at`` in each window of ``GET /v1/budgets/{scope}`` (audit28 C2 L1): when the
window's period ends, in the namespace's time zone, so that an agent or a person reading
``"period": "2026-W48"`` need not work out when a new one begins.

A field added to the usage tree the ledger answers (:meth:`guards.budgets.Budgets.usage_tree`),
from each window's period and the tree's ``timezone`` alone: nothing more is read.

Example:
    >>> tree = {"timezone": "America/New_York", "children": [], "models": [],
    ...         "levels": [{"windows": {"day": {"period": "2026-11-29"},
    ...                                 "total": {"period": "all"}}}]}
    >>> with_resets(tree)["levels"][0]["windows"]
    {'day': {'period': '2026-11-29', 'resets_at': '2026-11-30T00:00:00-05:00'},\
 'total': {'period': 'all', 'resets_at': None}}
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from guards.window_resets import resets_at

__all__ = ["with_resets"]


def with_resets(tree: dict[str, Any]) -> dict[str, Any]:
    """``tree`` with ``resets_at`` in every window of its levels and children, and in
    every entry of its ``models`` (null for ``total``)."""
    tz = ZoneInfo(tree["timezone"])
    for node in (*tree["levels"], *tree["children"]):
        for window, figures in node["windows"].items():
            figures["resets_at"] = resets_at(window, figures["period"], tz)
    for entry in tree["models"]:
        entry["resets_at"] = resets_at(entry["window"], entry["period"], tz)
    return tree
