"""The policy's ``webhooks:`` section: receivers an escalation step can page by HTTP.

A webhook is a name (used by the step ``notify: webhook:NAME``, in the alert's thread and
in the metric's labels) for a URL that gets a JSON POST when the step is taken, and
another when the alert's paging ends (see ``bot.webhooks``). The secret that signs the
requests is never written in the file: ``secret_env`` names the environment variable
that holds it (set when the policy is read: a SIGHUP cannot change a running process's
environment, but it can name another variable), or ``secret_file`` names a file holding
it, read again at each delivery (as Prometheus reads its ``credentials_file``), so that
a secret is rotated by rewriting the file, with no reload. Both are checked when the
policy is read (at start and at a SIGHUP); a file whose read takes over
:data:`SECRET_READ_SECONDS` (on a mount that hangs) is refused then, naming the key.

Example:
    >>> hook = Webhook.model_validate({"url": "https://pager.example/hook", "timeout": "5s"})
    >>> hook.timeout, hook.secret()
    (5, None)
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, field_validator, model_validator

from guards import slow_reads
from guards.config_types import PositiveSeconds, Section

__all__ = [
    "FOLD_AFTER",
    "MAX_SECRET_BYTES",
    "MAX_TIMEOUT_SECONDS",
    "SECRET_READ_SECONDS",
    "WEBHOOK_NAME",
    "SecretEmpty",
    "SecretSlow",
    "SecretUnreadable",
    "Webhook",
    "Webhooks",
    "read_secret_file",
    "read_secret_file_async",
    "read_secret_file_within",
    "resolve_secret_files",
    "undefined_webhooks",
    "webhook_name",
]

log = logging.getLogger(__name__)
#: a webhook's name: one word, as a metric label and a message can carry it
WEBHOOK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
# what a refused url's scheme and host may be shown as (anything else is not shown)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,15}")
_HOST = re.compile(r"[A-Za-z0-9.:\[\]-]{1,255}")
#: the longest a request may take (a stop of the process waits for none longer)
MAX_TIMEOUT_SECONDS = 30
#: a webhook's pages fold into one storm incident past this many in a minute (a pager
#: takes far more than a person's phone: ten unrelated P0s in a minute stay ten)
FOLD_AFTER = 10
#: the most of a secret_file that is read (a signing secret is a line, not a document)
MAX_SECRET_BYTES = 4096
#: the longest a secret_file's read may take (a file on a mount that hangs holds its
#: reader until the mount answers): when the policy is read, and at each delivery
SECRET_READ_SECONDS = 5.0


class SecretUnreadable(ValueError):
    """A ``secret_file`` that cannot give a secret now: the message names the file (never
    what is in it) and says what to do."""


class SecretEmpty(SecretUnreadable):
    """A ``secret_file`` that is there but empty (being rewritten, say)."""


class SecretSlow(SecretUnreadable):
    """A ``secret_file`` whose read took over its time (a file on a mount that hangs)."""


def read_secret_file(path: str) -> str:
    """The secret in the file at ``path``, its surrounding whitespace (the final newline
    of ``echo s3cret > file``) left out; SecretUnreadable when there is none. Only a
    regular file is read (a FIFO would hold the reader until something writes to it).

    Example:
        >>> read_secret_file("/nonexistent/pager.secret")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        guards.config_webhooks.SecretUnreadable: cannot read the secret_file /nonexistent/...
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise SecretUnreadable(
            f"cannot read the secret_file {path} ({exc.strerror or exc}): write the webhook's"
            " signing secret in it, readable by the user Nightshift runs as"
        ) from None
    try:
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError as exc:  # (a mount gone stale: ESTALE, EIO)
        os.close(fd)
        raise SecretUnreadable(
            f"cannot read the secret_file {path} ({exc.strerror or exc}): check the disk or"
            " mount it is on"
        ) from None
    if not regular:
        os.close(fd)
        raise SecretUnreadable(
            f"the secret_file {path} is not a regular file (a directory, a pipe, a device):"
            " name a file holding the signing secret"
        )
    with os.fdopen(fd, "rb") as f:
        try:
            raw = f.read(MAX_SECRET_BYTES + 1)
        except OSError as exc:
            raise SecretUnreadable(
                f"cannot read the secret_file {path} ({exc.strerror or exc}): check the"
                " disk it is on"
            ) from None
    if len(raw) > MAX_SECRET_BYTES:
        raise SecretUnreadable(
            f"the secret_file {path} is longer than {MAX_SECRET_BYTES} bytes: it holds the"
            " signing secret alone, on one line"
        )
    try:
        secret = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise SecretUnreadable(
            f"the secret_file {path} is not UTF-8 text: write the secret as text"
        ) from None
    if not secret:
        raise SecretEmpty(f"the secret_file {path} is empty: write the secret in it")
    return secret


def read_secret_file_within(path: str, *, seconds: float) -> str:
    """:func:`read_secret_file` on a daemon thread of its own, waited for at most
    ``seconds``: :class:`SecretSlow` when it takes longer (a regular file on an NFS mount
    that hangs), the thread left to end when the mount answers. At most one read of a
    file is in flight (:mod:`guards.slow_reads`): a read of it still hanging from before
    is waited for, not joined by another thread, so a hung mount holds one thread per
    file however often it is read, and never the loop's shared pool (review26 R3 H1).
    A read that fails (a missing file, a mount gone stale) says what failed.

    Example:
        >>> read_secret_file_within("/nonexistent/pager.secret", seconds=5)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        guards.config_webhooks.SecretUnreadable: cannot read the secret_file /nonexistent/...
    """
    try:
        return slow_reads.read_within(path, read=_read_secret_file, seconds=seconds)
    except Exception as exc:
        raise _unreadable(path, exc, seconds=seconds) from None


async def read_secret_file_async(path: str, *, seconds: float) -> str:
    """:func:`read_secret_file_within` awaited (at a delivery): no thread waits for it."""
    try:
        return await slow_reads.read_within_async(path, read=_read_secret_file, seconds=seconds)
    except Exception as exc:
        raise _unreadable(path, exc, seconds=seconds) from None


def _read_secret_file(path: str) -> str:
    return read_secret_file(path)  # (looked up now: a test puts a slow disk in its place)


def _unreadable(path: str, exc: Exception, *, seconds: float) -> SecretUnreadable:
    if isinstance(exc, SecretUnreadable):
        return exc
    if isinstance(exc, slow_reads.StillReading):
        return SecretSlow(
            f"the secret_file {path} took over {seconds:g}s to read: check the disk or"
            " mount it is on"
        )
    said = (exc.strerror if isinstance(exc, OSError) else None) or exc  # (review26 R3 L3)
    return SecretUnreadable(
        f"cannot read the secret_file {path} ({said}): check the file and the disk or"
        " mount it is on"
    )


def resolve_secret_files(data: object, *, base: Path) -> None:
    """Make each relative ``webhooks.<name>.secret_file`` of the policy's parsed YAML
    ``data`` relative to ``base``, the policy file's directory (as Prometheus reads a
    ``credentials_file``), in place; anything else is left to validation."""
    hooks = data.get("webhooks") if isinstance(data, dict) else None
    if not isinstance(hooks, dict):
        return
    for hook in hooks.values():
        path = hook.get("secret_file") if isinstance(hook, dict) else None
        if isinstance(path, str) and path.strip() and not os.path.isabs(path):
            hook["secret_file"] = os.path.normpath(os.path.join(base, path))


def webhook_name(value: str) -> str:
    """``value``, a webhook's name, or ValueError saying what a name is."""
    if not WEBHOOK_NAME.fullmatch(value):
        raise ValueError(
            f"{value[:80]!r}: a webhook's name is one word of letters, digits, . _ -"
            " (at most 64, starting with a letter or digit), e.g. pagerduty"
        )
    return value


class Webhook(Section):
    """One receiver: ``url`` (http or https, with a host), ``secret_env`` (the name of
    the environment variable holding the signing secret) or ``secret_file`` (a file
    holding it, read at each delivery; optional, one or the other), ``timeout`` (how
    long one request may take, 1s to 30s; default 10s) and ``fold_after`` (in an alert
    storm: past this many pages to it within a minute, the next ones fold into one
    incident, :mod:`bot.webhook_storms`; 0 never folds; default :data:`FOLD_AFTER`)."""

    url: str
    secret_env: str | None = None
    secret_file: str | None = None
    timeout: PositiveSeconds = 10
    fold_after: int = Field(FOLD_AFTER, ge=0, le=10_000)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        # (a refusal names the host at most: a url's user info, path and query may hold a
        # password or a receiver's key, and the refusal goes to the log)
        scheme, sep, rest = value.partition("://")
        authority = re.split(r"[/?#]", rest, maxsplit=1)[0] if sep else ""
        if "@" in authority:  # checked first, on the raw text: never echoed
            raise ValueError(
                "a webhook url carries no user or password (it is written to the log and the"
                " thread); sign the requests with secret_env instead"
            )
        host = authority if _HOST.fullmatch(authority) else "(not shown)"
        try:
            parts = urlsplit(value)
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not sep:
            said = repr(scheme) if _SCHEME.fullmatch(scheme) and sep else "none"
            raise ValueError(
                f"a webhook url is http:// or https:// (its scheme is {said}), then a host and"
                " maybe a port (https://events.pagerduty.example/hook)"
            )
        try:
            port_ok = parts.port is None or parts.port > 0  # reading it checks 0-65535
        except ValueError:
            port_ok = False
        if not port_ok:
            raise ValueError(
                f"the url's port is not a number from 1 to 65535 (host and port: {host});"
                " write https://HOST:PORT/..."
            )
        if not parts.hostname:
            raise ValueError("the url names no host; write https://HOST/...")
        if parts.username is not None or parts.password is not None:
            raise ValueError(
                "a webhook url carries no user or password (it is written to the log and the"
                " thread); sign the requests with secret_env instead"
            )
        if not value.isascii() or any(c.isspace() for c in value):
            raise ValueError(
                f"write the url percent-encoded: ASCII, no spaces (host: {host}; its path and"
                " query are not shown here, as they may hold a key)"
            )
        return value

    @field_validator("secret_env")
    @classmethod
    def _secret_env(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _ENV_NAME.fullmatch(value):
            raise ValueError(
                f"{value[:80]!r}: secret_env is the NAME of an environment variable (letters,"
                " digits and _), e.g. PAGER_SECRET; the secret itself never goes in the file"
            )
        secret = os.environ.get(value)
        if secret is None:
            raise ValueError(
                f"the environment variable {value} is not set: set it to the webhook's"
                " signing secret in Nightshift's environment before starting it (a SIGHUP"
                " cannot set it: restart, or name the file holding it with secret_file), or"
                " leave secret_env out"
            )
        if not secret:
            raise ValueError(f"the environment variable {value} is empty: set it to the secret")
        return value

    @field_validator("secret_file")
    @classmethod
    def _secret_file(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value or len(value) > 1024 or "\x00" in value or not value.strip():
            raise ValueError(
                "secret_file is the PATH of a file holding the signing secret, e.g."
                " /etc/nightshift/pager.secret"
            )
        try:  # (its error names the file, never what is in it)
            read_secret_file_within(value, seconds=SECRET_READ_SECONDS)
        except SecretEmpty as exc:  # being rewritten as we start: its deliveries wait
            log.warning(
                "webhooks: %s; until it is, this webhook's deliveries are held (tried again,"
                " never sent unsigned)",
                exc,
            )
        return value

    @model_validator(mode="after")
    def _one_secret(self) -> Webhook:
        if self.secret_env is not None and self.secret_file is not None:
            raise ValueError(
                "give the signing secret one way: secret_env (an environment variable) or"
                " secret_file (a file, read at each delivery), not both"
            )
        return self

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: int) -> int:
        if value > MAX_TIMEOUT_SECONDS:
            raise ValueError(
                f"{value}s is too long for one request: at most {MAX_TIMEOUT_SECONDS}s (a"
                " failed request is tried again, with backoff)"
            )
        return value

    def secret(self) -> str | None:
        """The signing secret, read now from the environment or the file (None: requests
        are unsigned). Raises SecretUnreadable when ``secret_file`` gives none now (being
        rewritten, say), or ``secret_env``'s variable is not set (a webhook taken out of
        the policy, its variable with it, still resolves what it opened): nothing is sent
        unsigned for them."""
        if self.secret_file is not None:
            return read_secret_file(self.secret_file)
        if self.secret_env is None:
            return None
        secret = os.environ.get(self.secret_env)
        if not secret:
            raise SecretUnreadable(
                f"its secret_env variable {self.secret_env} is no longer set in Nightshift's"
                " environment: set it and restart, or the incident at the receiver stays open"
            )
        return secret

    async def secret_within(self, *, seconds: float) -> str | None:
        """:meth:`secret` at a delivery: a ``secret_file`` read off the loop, on a thread of
        its own (:func:`read_secret_file_async`), :class:`SecretSlow` past ``seconds``."""
        if self.secret_file is not None:
            return await read_secret_file_async(self.secret_file, seconds=seconds)
        return self.secret()


WebhookName = Annotated[str, AfterValidator(webhook_name)]
Webhooks = dict[WebhookName, Webhook]


def undefined_webhooks(
    notifies: Sequence[str], webhooks: Mapping[str, Webhook]
) -> list[tuple[tuple[str | int, ...], str]]:
    """The escalation steps (``oncall.escalation``'s ``notify`` values, in order) that
    name a webhook ``webhooks`` does not define, each with its key path and what to do."""
    known = ", ".join(sorted(webhooks)) if webhooks else None
    said = f"; webhooks are {known}" if known else "; define it under webhooks: (none is)"
    return [
        (("oncall", "escalation", i, "notify"), f"unknown webhook {notify[8:]!r}{said}")
        for i, notify in enumerate(notifies)
        if notify.startswith("webhook:") and notify[8:] not in webhooks
    ]
