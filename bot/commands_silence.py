"""``/agent silence``: hold an alert, a kind of alert or a scope for a while, now or booked
ahead, with a reason; ``off`` lifts it (or cancels a booking).

Who may silence: admins, and the responders of the policy (:mod:`bot.responders`). The
target is read as ``alerts`` reads its filter (:mod:`bot.alerts.targets`).

Example:
    >>> # /agent silence acme/alice 2h from 22:00 -- deploy 4.2
"""

from __future__ import annotations

from collections.abc import Callable
from zoneinfo import ZoneInfo

from bot.alerts import operations as ops
from bot.alerts.render_time import clock_time, duration
from bot.alerts.when import now_note
from bot.api_text import refuse_control
from bot.blocks import echo
from bot.chat_words import join_duration, typed
from bot.commands import Context, Reply, UsageError, subcommand
from bot.commands_alert_buttons import lifted_silences, still_silenced
from bot.commands_oncall_override import day_time, starts_from
from bot.escape import member_or_name, slack_text
from bot.known_scopes import did_you_mean, meant
from bot.responders import duration_arg, engine_of, local_time, require_responder
from guards.store import Tx
from guards.words import plural

__all__ = ["span_text", "why_text"]

LIFT_WORDS = ("off", "lift", "end")
MAX_REASON = 200  # characters of a silence's reason
MAX_AHEAD_DAYS = 30  # a silence is booked at most this far ahead
REASON_MARKS = ("--", "—", "–")  # `--`, and the dashes phones make of it
REASON_SHOWN = "it is shown with the alerts it holds"


def _reason(args: list[str]) -> tuple[list[str], str | None]:
    """The words before the reason's separator, and the reason as typed (None: none).

    The separator is `--` (a phone's keyboard may make it `—` or `–`: read the same),
    alone or stuck to the reason's first word.
    """
    for at, word in enumerate(args):
        said = getattr(word, "typed", word)
        mark = next((m for m in REASON_MARKS if said.startswith(m)), None)
        if mark is None:
            continue
        reason = " ".join([said[len(mark) :], typed(args[at + 1 :])]).strip()
        if not reason:
            raise UsageError(
                f"`{mark}` needs a reason after it (`-- provider maintenance`). Nothing changed."
            )
        if len(reason) > MAX_REASON:
            raise UsageError(
                f"a reason is at most {MAX_REASON} characters ({len(reason)} given);"
                " say more in the thread. Nothing changed."
            )
        try:  # the rule of POST /v1/silences' reason, in its words (review28 R4 L1)
            refuse_control(reason, why=REASON_SHOWN)
        except ValueError as exc:
            raise UsageError(f"the reason {exc}.") from None
        return args[:at], reason
    return args, None


def _booked_start(ctx: Context, when: list[str]) -> tuple[float | None, str | None]:
    """The start `from <when>` names, or (None, what the reply says) for one within the
    last minute: it means now."""
    now = ctx.ns.clock.now()
    tz = engine_of(ctx).tz
    # a start typed at 22:00:20 for 22:00 means now, not tomorrow's (nor "past")
    at = starts_from(when, tz, now, thing="a silence", ahead_days=MAX_AHEAD_DAYS)
    return (at, None) if at > now else (None, now_note(when, at, now))


@subcommand(
    "silence",
    usage="silence <id, kind[:scope] or scope> <duration|off> [from <when>] [-- reason]",
)
async def cmd_silence(ctx: Context, args: list[str]) -> Reply:
    """Silences an alert, a kind of alert or a scope for a while, across re-fires; `off` lifts it.

    The target is read as `alerts` reads its filter: an alert id (`12`, `#12`); an alert
    kind (`heartbeat_missed`, or `breaker_opened` for the three breaker kinds) on every
    scope; `kind:scope` (`heartbeat_missed:acme`): that kind on the scope and below it; a
    scope (`acme/alice`: it and everything below it); `model:<name>` for a model's
    breaker alerts. A scope or model Nightshift has not seen is silenced as asked (ahead
    of an agent's first call, say) and the reply says so first, with the scope probably
    meant (a typo would silence nothing).

    `off` (also `lift`, `end`) ends the active silences on that target now. A lift ends
    the silences made on exactly that target (`#12` and its `kind:scope` are the same
    target; a silence on a wider scope still holds and is named in the reply). Open
    alerts the lifted silences held are posted (or their message updated) and put back
    on the escalation chain at once, as when a silence expires: a P0 pages on-call again
    unless it was acknowledged. Later firings notify as usual. Firings recorded while
    silenced stay counted; `/agent alerts` lists the active silences.

    `from <when>` books it ahead (`from 22:00`, `from sat 02:00`, `from tomorrow 9:15`,
    `from 2026-12-05 02:00`, in the policy's zone; a bare time is its next one; at most
    30 days ahead): it holds nothing before its start, and at its start the open alerts
    it matches are silenced. A start within the last minute means now. `-- reason`
    (last) says why; `off` also cancels the silences booked on that target.
    """
    args, reason = _reason(args)
    args = join_duration(args, 1)  # `2 h`, `2 hours`
    booking = len(args) > 2 and args[2].lower() == "from"
    if len(args) > 1 and args[1].lower() in LIFT_WORDS and (booking or reason is not None):
        raise UsageError(
            f"`{args[1].lower()}` takes no start nor reason:"
            f" `/agent silence {echo(args[0], 80)} off`. Nothing changed."
        )
    starts_at, taken_as_now = None, None
    if booking:
        args, (starts_at, taken_as_now) = args[:2], _booked_start(ctx, args[3:])
    if len(args) != 2:
        raise UsageError()
    if args[1].lower() in LIFT_WORDS:
        return await _lift(ctx, args[0])
    seconds = duration_arg(args[1])
    await require_responder(ctx, "silence alerts")
    engine = engine_of(ctx)

    def make(unseen_ok: bool) -> Callable[[Tx], ops.SilenceMade]:
        return lambda tx: ops.silence(
            engine,
            tx,
            target=args[0],
            seconds=seconds,
            actor=ctx.actor,
            unseen_ok=unseen_ok,
            starts_at=starts_at,
            reason=reason,
        )

    try:
        made = await ctx.ns.store.write(make(False))
    except ops.UnseenTarget as exc:
        unseen_path, prefix, guess = exc.path, exc.prefix, exc.suggestion
        warning = f"⚠️ {exc.message}: this silence covers it"
    else:
        return _silenced(ctx, made, seconds, note=taken_as_now or "")
    if unseen_path is not None:  # the scope probably meant, read off the writer
        close = await ctx.ns.store.read(lambda tx: meant(ctx.ns.policy, tx, unseen_path))
        guess = did_you_mean(close, prefix=prefix)
    made = await ctx.ns.store.write(make(True))
    note = f"{warning} once something there alerts.{guess}"
    return _silenced(ctx, made, seconds, note=f"{taken_as_now}\n{note}" if taken_as_now else note)


def span_text(start: float, until: float, tz: ZoneInfo, now: float) -> str:
    """``from 22:00 today until 23:00``, ``from Sat 05 Dec 02:00 until 04:00``."""
    return f"from {day_time(start, tz, now)} until {clock_time(until, tz, now=start)}"


def why_text(reason: str | None) -> str:
    return f" — {slack_text(reason)}" if reason else ""


def _silenced(ctx: Context, made: ops.SilenceMade, seconds: int, *, note: str = "") -> Reply:
    first = f"{note}\n" if note else ""
    tz, now = engine_of(ctx).tz, ctx.ns.clock.now()
    if made.made_by is not None:
        by = member_or_name(made.made_by)  # a person, or a token (token:tok_…)
        if made.starts_at is not None:
            return Reply.text_only(
                f"{first}🔕 {made.matches} is already booked silent by {by}"
                f" {span_text(made.starts_at, made.expires_at, tz, now)}; nothing changed."
            )
        return Reply.text_only(
            f"{first}🔕 {made.matches} is already silenced by {by}"
            f" until {local_time(made.expires_at, ctx)}; nothing changed."
        )
    if made.starts_at is not None:
        return Reply.text_only(
            f"{first}🔕 <@{ctx.actor}> booked a silence of {made.matches}"
            f" {span_text(made.starts_at, made.expires_at, tz, now)} ({tz.key})"
            f"{why_text(made.reason)}.",
            ephemeral=False,
        )
    also = f"; {plural(len(made.silenced), 'open alert')} silenced now" if made.silenced else ""
    return Reply.text_only(
        f"{first}🔕 <@{ctx.actor}> silenced {made.matches} for {duration(seconds)}"
        f" (until {local_time(made.expires_at, ctx)}){why_text(made.reason)}{also}."
        " Firings are still recorded.",
        ephemeral=False,
    )


async def _lift(ctx: Context, target: str) -> Reply:
    await require_responder(ctx, "lift silences")
    engine = engine_of(ctx)
    done = await ctx.ns.store.write(
        lambda tx: ops.lift(engine, tx, target=target, actor=ctx.actor, booked=True)
    )
    what = done.target
    on = what.name if what.alert_id is None else f"{what.name} ({what.fingerprint})"
    covered = ""
    if done.covered_by is not None:
        covered = f" {still_silenced(what.name, done.covered_by)}"
    cancelled = _cancelled(ctx, done, on)
    if cancelled and not done.lifted:
        return Reply.text_only(f"🔔 <@{ctx.actor}> {cancelled}.{covered}", ephemeral=False)
    if cancelled:
        covered = f" It also {cancelled}.{covered}"
    if not done.lifted:
        return Reply.text_only(
            f"There is no active silence on {on}; nothing changed.{covered}"
            " `/agent alerts` lists the active silences."
        )
    head = lifted_silences(done, on)
    if done.notify_again:
        notify = "notifies" if len(done.notify_again) == 1 else "notify"
        after = f"{plural(len(done.notify_again), 'open alert')} {notify} again now"
    else:
        after = "the next firing notifies as usual"
    still = ""
    if done.still_silenced:
        held = len(done.still_silenced)
        stays = "stays" if held == 1 else "stay"
        still = f" {plural(held, 'open alert')} {stays} silenced by another silence."
    return Reply.text_only(
        f"🔔 <@{ctx.actor}> lifted {head}; {after}.{still}{covered}", ephemeral=False
    )


def _cancelled(ctx: Context, done: ops.SilenceLifted, on: str) -> str:
    """``cancelled the silence on acme booked from 22:00 today until 23:00 (by <@U01>)
    before its start`` (or how many), or "" when no booked silence was cancelled."""
    if not done.cancelled:
        return ""
    if len(done.cancelled) > 1:
        return f"cancelled {len(done.cancelled)} silences booked on {on} before their start"
    [b] = done.cancelled
    tz, now = engine_of(ctx).tz, ctx.ns.clock.now()
    span = span_text(b.starts_at or now, b.expires_at, tz, now)
    by = member_or_name(b.created_by)
    return f"cancelled the silence on {on} booked {span} (by {by}) before its start"
