"""A form in the shell gives up out loud: answers after it are not taken for the form."""

from __future__ import annotations

from bot.commands_core import budget_raise_view
from bot.shell_modal import TRIES, fill_modal


async def test_a_form_says_it_closed_after_its_tries_and_changes_nothing():
    # amount, window and for how long per round; "2" after
    answers = iter(["abc", "", "", "-5", "", "", "1e3", "", "", "2"])
    asked: list[str] = []
    said: list[str] = []

    async def ask(question: str) -> str | None:
        asked.append(question)
        return next(answers)

    view = budget_raise_view("acme/a/b", {"day": 1_000_000})
    result = await fill_modal(None, view, ask=ask, say=said.append)  # type: ignore[arg-type]
    assert result is None
    assert len(asked) == 3 * TRIES  # the "2" after them is left for the prompt
    assert said[-1] == f"(form closed after {TRIES} tries; nothing changed)"
    assert sum("is not an amount" in s or "more than $0" in s for s in said) >= 2
