"""Shell mode's modals: a Block Kit modal asked as questions, one input at a time.

A button that opens a modal in Slack asks its inputs at the prompt instead: a text
input is a question, a select lists its options by number (Enter keeps the
default). The answers go to the modal's view-submission handler
(``VIEW_SUBMISSIONS``) as Slack would send them; an invalid answer is shown and
asked again, the others kept, as Slack shows the error under that input and keeps the
rest; the form gives up after three wrong answers to one question. A form whose
subject changed while it was asked (:class:`~bot.raise_form.StaleForm`: another limit
was set) says what it is now, and the next round's answers go through. A refusal is
worded as a command's (:func:`~bot.commands.refusal_text`); one that answering again
cannot change (not an admin, a database that refuses writes) ends the form. ``cancel``
or the end of input gives up.

Example:
    >>> # result = await fill_modal(ctx, view, ask=ask_at_the_prompt, say=print)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bot.commands import ActionResult, Context, NotAdmin, refusal_text
from bot.commands_core import VIEW_SUBMISSIONS
from bot.raise_form import StaleForm
from bot.shell_render import plain, render_text, text_of
from guards.errors import GuardError, InvalidInput, StorageUnavailable

__all__ = ["fill_modal"]

Ask = Callable[[str], Awaitable[str | None]]
"""Print a question and wait for the typed answer (None: cancelled or input closed)."""


TRIES = 3  # wrong answers to one question (or refusals of the form) before it gives up


async def fill_modal(
    ctx: Context, view: dict[str, Any], *, ask: Ask, say: Callable[[str], None]
) -> ActionResult | None:
    """A modal as questions; 'cancel' or end of input gives up."""
    handler = VIEW_SUBMISSIONS.get(str(view.get("callback_id") or ""))
    if handler is None:
        say("This form cannot be filled in the shell.")
        return None
    title = text_of(view.get("title"))
    intro = [b for b in view.get("blocks") or [] if b.get("type") != "input"]
    say(f"── {title} (type cancel to stop) ──\n{render_text(intro)}")
    inputs = [b for b in view.get("blocks") or [] if b.get("type") == "input"]
    metadata = str(view.get("private_metadata") or "")
    values: dict[str, str] = {}
    asking = inputs
    wrong: dict[str, int] = {}  # refusals by the answer they named ("": the whole form)
    while max(wrong.values(), default=0) < TRIES:
        for block in asking:
            answer = await _answer(block, ask)
            if answer is None:
                say("(cancelled)")
                return None
            values[str(block.get("block_id"))] = answer
        asking = inputs
        try:
            return await handler(ctx, metadata, values)
        except StaleForm as exc:  # changed while the questions were asked: say so, ask again
            metadata = exc.metadata
            say(f"✗ {plain(exc.now)}; answer again to {exc.retry}")
            wrong[""] = wrong.get("", 0) + 1
        except InvalidInput as exc:  # the answer it names is asked again, the others kept
            say(f"✗ {exc.message}")
            asking = [b for b in inputs if b.get("block_id") == exc.field] or inputs
            named = exc.field if asking is not inputs else ""
            wrong[named] = wrong.get(named, 0) + 1
        except (NotAdmin, StorageUnavailable) as exc:  # answering again changes nothing
            say(f"✗ {plain(refusal_text(ctx, exc))}")
            return None
        except GuardError as exc:
            say(f"✗ {plain(refusal_text(ctx, exc))}")
            wrong[""] = wrong.get("", 0) + 1
    say(f"(form closed after {TRIES} tries; nothing changed)")
    return None


async def _answer(block: dict[str, Any], ask: Ask) -> str | None:
    element = block.get("element") or {}
    question = text_of(block.get("label"))
    if element.get("type") == "static_select":
        options = element.get("options") or []
        initial = (element.get("initial_option") or {}).get("value")
        choices = "  ".join(f"[{i}] {text_of(o.get('text'))}" for i, o in enumerate(options, 1))
        answer = await ask(f"{question}: {choices} (default {initial}): ")
        if answer is None:
            return None
        if not answer:
            return str(initial or "")
        if answer.isdigit() and 1 <= int(answer) <= len(options):
            return str(options[int(answer) - 1].get("value"))
        return answer
    return await ask(f"{question}: ")
