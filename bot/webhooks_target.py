"""Where a webhook event goes: the webhook of its name, or the receiver its trigger reached.

Each event row keeps its webhook as it was when the row was written (``target``: the url,
``secret_env`` or ``secret_file``, the timeout; names and paths, never a secret). When it
is sent (:func:`hook_for`):

- a webhook of its name in the policy: that one, as the policy says it now (a url fixed
  or a secret rotated since applies to what is still pending);
- else a webhook whose url is the one recorded (renamed at a reload): that one;
- else, for a resolve, the recorded receiver: the incident its trigger opened there is
  closed there (signed as then: the variable or the file named then, read now);
- else none: a trigger to a webhook taken out of the policy is not sent.

:func:`reload_lines` says at a SIGHUP what becomes of the events of a webhook renamed or
taken out; :func:`secret_files_note` that a rewritten ``secret_file`` needs no reload.

Example:
    >>> hook = Webhook.model_validate({"url": "https://pager.example/h", "timeout": "5s"})
    >>> target_of(hook)
    '{"url":"https://pager.example/h","secret_env":null,"secret_file":null,"timeout":5}'
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from guards.config import Policy
from guards.config_webhooks import Webhook

__all__ = ["hook_for", "reload_lines", "secret_files_note", "target_of"]


def target_of(hook: Webhook) -> str:
    """The row's ``target``: ``hook`` as it is now, without its secret."""
    recorded = {
        "url": hook.url,
        "secret_env": hook.secret_env,
        "secret_file": hook.secret_file,
        "timeout": hook.timeout,
    }
    return json.dumps(recorded, separators=(",", ":"))


def _recorded(target: str | None) -> Webhook | None:
    """The webhook a row recorded (None: none, or unreadable). Not validated again: its
    variable or file is read when the event is sent, and said then if it gives nothing."""
    if not target:
        return None
    try:
        data = json.loads(target)
        return Webhook.model_construct(
            url=str(data["url"]),
            secret_env=data.get("secret_env"),
            secret_file=data.get("secret_file"),
            timeout=int(data.get("timeout") or 10),
        )
    except (ValueError, TypeError, KeyError):
        return None


def hook_for(policy: Policy, *, name: str, event: str, target: str | None) -> Webhook | None:
    """The webhook an event for ``name`` is sent through now (None: it is not sent)."""
    hook = policy.webhooks.get(name)
    if hook is not None:
        return hook
    recorded = _recorded(target)
    if recorded is None:
        return None
    for other in policy.webhooks.values():  # renamed: the same receiver
        if other.url == recorded.url:
            return other
    return recorded if event == "resolve" else None


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"


def _where(url: str) -> str:
    """The url's host, and its port when it names one: what a reload may say of a
    receiver (never its path or query, which may hold the receiver's key).

    Example:
        >>> _where("http://127.0.0.1:9000/k3y?x=1"), _where("https://pager.example/k3y")
        ('127.0.0.1:9000', 'pager.example')
    """
    try:
        port = urlsplit(url).port
    except ValueError:
        port = None
    return _host(url) if port is None else f"{_host(url)}:{port}"


def reload_lines(old: Policy, new: Policy) -> list[str]:
    """What a reload does to the events of each webhook it renames, takes out, or gives
    another url."""
    lines = []
    for name, hook in old.webhooks.items():
        now = new.webhooks.get(name)
        if now is not None and now.url != hook.url and _where(now.url) == _where(hook.url):
            # (hosts only, here too: a url's path or query may hold the receiver's key)
            lines.append(
                f"webhook {name}'s url changed on the same host ({_where(hook.url)}): its"
                f" events still waiting, and the resolves of the incidents it opened at the"
                f" old url, go to the new one now; to close those at the old url, keep it"
                f" under another name until they are resolved"
            )
        elif now is not None and now.url != hook.url:
            lines.append(
                f"webhook {name}'s url changed ({_where(hook.url)} to {_where(now.url)}): its"
                f" events still waiting, and the resolves of the incidents it opened at"
                f" {_where(hook.url)}, go to {_where(now.url)} now; to close those at the old"
                f" receiver, keep it under another name until they are resolved"
            )
        if now is not None:
            continue
        renamed = [n for n, h in new.webhooks.items() if h.url == hook.url]
        if renamed:
            lines.append(
                f"webhook {name} is now named {renamed[0]} (the same url): its events still"
                f" waiting, and the resolves of the incidents it opened, go through"
                f" {renamed[0]}, signed as {renamed[0]} is"
            )
        else:
            lines.append(
                f"webhook {name} is gone from the policy: the incidents it opened still get"
                f" their resolve as their alerts end, sent to {_host(hook.url)} as their"
                f" triggers were and signed as then; its pages not sent yet are not sent"
            )
    return lines


def secret_files_note(policy: Policy) -> str:
    """`` (…)``: that the webhooks' ``secret_file``s are read at each delivery (a rotated
    secret is in use without a reload); empty when no webhook has one."""
    named = sorted(name for name, hook in policy.webhooks.items() if hook.secret_file)
    if not named:
        return ""
    return (
        f" (a secret_file is read at each delivery: a new secret there, for {', '.join(named)},"
        " is in use already)"
    )
