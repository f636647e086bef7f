"""A form in the shell gives up out loud: answers after it are not taken for the form."""

from __future__ import annotations

from bot.commands import ActionResult
from bot.commands_core import VIEW_SUBMISSIONS, budget_raise_view, parse_amount, parse_for
from bot.shell_modal import TRIES, fill_modal


async def test_a_form_says_it_closed_after_its_tries_and_changes_nothing():
    # amount, window and for how long, then the amount again each round; "2" after
    answers = iter(["abc", "", "", "-5", "1e3", "2"])
    asked: list[str] = []
    said: list[str] = []

    async def ask(question: str) -> str | None:
        asked.append(question)
        return next(answers)

    view = budget_raise_view("acme/a/b", {"day": 1_000_000})
    result = await fill_modal(None, view, ask=ask, say=said.append)  # type: ignore[arg-type]
    assert result is None
    assert len(asked) == 3 + (TRIES - 1)  # the "2" after them is left for the prompt
    assert all(q.startswith("New limit") for q in asked[3:])  # the others are kept
    assert said[-1] == f"(form closed after {TRIES} tries; nothing changed)"
    assert sum("is not an amount" in s or "more than $0" in s for s in said) >= 2


async def fill(
    typed: list[str],
) -> tuple[ActionResult | None, list[str], list[str], dict[str, str]]:
    """The Raise budget form filled with ``typed``, submitted to a handler that reads the
    amount and the duration as the real one does: (result, questions, said, last values)."""
    answers = iter(typed)
    asked: list[str] = []
    said: list[str] = []
    got: list[dict[str, str]] = [{}]

    async def ask(question: str) -> str | None:
        asked.append(question)
        return next(answers)

    async def submit(ctx: object, metadata: str, values: dict[str, str]) -> ActionResult:
        got.append(dict(values))
        parse_amount(values["amount"])
        parse_for(values["for"])
        return ActionResult(ephemeral="done")

    view = budget_raise_view("acme/a/b", {"day": 1_000_000})
    VIEW_SUBMISSIONS[view["callback_id"]], saved = submit, VIEW_SUBMISSIONS[view["callback_id"]]
    try:
        result = await fill_modal(None, view, ask=ask, say=said.append)  # type: ignore[arg-type]
    finally:
        VIEW_SUBMISSIONS[view["callback_id"]] = saved
    return result, asked, said, got[-1]


async def test_a_bad_answer_is_asked_again_and_the_others_are_kept():
    # recheck28 L3: a bad "For how long" asked the limit and the window again
    result, asked, said, values = await fill(["25", "2", "soon", "2h"])
    assert result is not None and result.ephemeral == "done"
    assert [q.split(" (")[0].split(":")[0] for q in asked] == [
        "New limit",
        "Window",
        "For how long",
        "For how long",
    ]
    assert values == {"amount": "25", "window": "week", "for": "2h"}
    assert any("a duration like 2h or 1d" in s for s in said)


async def test_wrong_answers_to_different_questions_do_not_close_the_form():
    # recheck30 L1: `abc`, `five`, then 30 closed the form before "For how long" was asked again
    result, _, said, values = await fill(["abc", "2", "soon", "five", "30", "later", "2h"])
    assert result is not None and result.ephemeral == "done", said
    assert values == {"amount": "30", "window": "week", "for": "2h"}
