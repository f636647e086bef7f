"""Reading the policy file: a regular file of at most 1 MiB, UTF-8, YAML read strictly
(no key written twice; numbers and booleans as YAML 1.2 reads them).

Example:
    >>> _StrictLoader("notify: yes").get_single_data()  # YAML 1.1 would read true
    {'notify': 'yes'}
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from guards.config_types import PolicyError

__all__ = ["MAX_POLICY_BYTES", "Repeat", "read_policy_bytes", "read_yaml"]

MAX_POLICY_BYTES = 1024 * 1024  # a policy takes a few KB; more is a wrong path or a device

_MERGE = "tag:yaml.org,2002:merge"


class Repeat(NamedTuple):
    """A key written twice in one mapping: its key path (``("budgets", "scopes",
    "acme")``, a list item by its index) and the line that says so."""

    path: tuple[str, ...]
    said: str


# YAML 1.2's core schema for booleans and numbers: PyYAML follows YAML 1.1, where
# `010` is octal ($8), `0x10` hex, `1:30` base 60 (90) and `yes`/`on` are true, so a
# slip would load as another value without a word. These stay strings (and are then
# refused, or read as written: `time: 10:30`).
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT = re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$")  # `0800` stays text: a name, or a time
_FLOAT = re.compile(  # PyYAML's, without base 60
    r"^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_CORE = {"tag:yaml.org,2002:bool": _BOOL, "tag:yaml.org,2002:int": _INT}
_CORE["tag:yaml.org,2002:float"] = _FLOAT


class _StrictLoader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader, except that a key repeated in a mapping is noted (to be
    refused), and that booleans and numbers are read as YAML 1.2 reads them (decimal
    only, true/false).

    PyYAML keeps the last of two equal keys and drops the first without a word: an
    operator who appends a second ``budgets:`` block would lose the first one.
    """

    yaml_implicit_resolvers = {  # noqa: RUF012 (PyYAML reads it off the class)
        first: [(tag, _CORE.get(tag, pattern)) for tag, pattern in resolvers]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.repeated: list[Repeat] = []  # the keys written twice, once read

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        text = str(self.construct_scalar(node)).replace("_", "")
        try:
            return int(text)
        except ValueError:  # Python's limit on digits; its own advice is not for them
            raise yaml.constructor.ConstructorError(
                None, None, f"a number of {len(text)} digits is too long", node.start_mark
            ) from None

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        """A date, or its text when there is no such day (``2026-02-30``): the key's own
        check then names the key (PyYAML would raise a ValueError naming nothing)."""
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            return self.construct_scalar(node)

    def get_single_data(self) -> Any:
        """The document, as PyYAML reads it (of a key written twice, the last), with each
        repeat kept in :attr:`repeated` (in line order), to be said with every other
        problem of the file at once (audit26 A1 L1)."""
        node = self.get_single_node()
        if node is None:
            return None
        self.repeated = [p for _, p in sorted(self._repeated_keys(node))]
        return self.construct_document(node)

    def _repeated_keys(self, root: yaml.Node) -> Iterator[tuple[int, Repeat]]:
        """``(9, Repeat(("budgets", "scopes", "acme"), "budgets.scopes: line 9: key 'acme'
        appears twice ..."))`` per repeat."""
        seen: set[int] = set()
        stack: list[tuple[yaml.Node, tuple[str, ...]]] = [(root, ())]
        while stack:
            node, where = stack.pop()
            if id(node) in seen:  # an alias: checked where its anchor is
                continue
            seen.add(id(node))
            if isinstance(node, yaml.SequenceNode):
                stack.extend((item, (*where, str(i))) for i, item in enumerate(node.value))
            if not isinstance(node, yaml.MappingNode):
                continue
            first: dict[object, int] = {}
            for key, value in node.value:
                name = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
                stack.append((value, (*where, name)))
                if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE:
                    continue  # a merge (<<) may be overridden; complex keys PyYAML refuses
                line = key.start_mark.line + 1
                # compare values, not spellings: 1 and 1.0, or true and True, are one key
                constructed = self.construct_object(key)
                if constructed not in first:
                    first[constructed] = line
                    continue
                problem = (
                    f"line {line}: key {name!r} appears twice (first at line"
                    f" {first[constructed]}); write it once, with everything it holds under it"
                )
                said = f"{'.'.join(where)}: {problem}" if where else problem
                yield line, Repeat((*where, name), said)


def read_policy_bytes(file: Path) -> bytes:
    """The bytes of the policy file ``file``, which must be a regular file of at most
    :data:`MAX_POLICY_BYTES` (PolicyError otherwise, naming the path and what to do).

    It is opened without waiting: a FIFO would hold the start (or a reload, and with it
    the server) in open(2) until someone wrote to it, and ``/dev/zero`` would be read
    until the memory ran out (audit26 A1 L5).
    """
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:  # no permission, a loop of links: the file's problem, said as one
        raise PolicyError(f"{file}: cannot read the policy file: {exc.strerror}") from None
    try:
        status = os.fstat(fd)
        mode, size = status.st_mode, status.st_size
        if stat.S_ISDIR(mode):
            raise PolicyError(
                f"{file}: cannot read the policy file: Is a directory (name the policy file"
                " in it, e.g. nightshift.yml)"
            )
        if not stat.S_ISREG(mode):
            raise PolicyError(
                f"{file}: the policy file is {_kind(mode)}, not a regular file: Nightshift"
                " reads its policy only from a file (copy it into one, and name that)"
            )
        raw = _read_at_most(fd, MAX_POLICY_BYTES + 1) if size <= MAX_POLICY_BYTES else b""
    except OSError as exc:  # a read error of the disk
        raise PolicyError(f"{file}: cannot read the policy file: {exc.strerror}") from None
    finally:
        os.close(fd)
    if size > MAX_POLICY_BYTES or len(raw) > MAX_POLICY_BYTES:
        raise PolicyError(
            f"{file}: the policy file is over 1 MiB ({max(size, len(raw)):,} bytes); a"
            " policy takes a few KB: check that NIGHTSHIFT_CONFIG or --config names the"
            " policy file, not a log or a database"
        )
    return raw


def _read_at_most(fd: int, limit: int) -> bytes:
    """Up to ``limit`` bytes of ``fd``, to its end (a file that grows is cut there)."""
    chunks: list[bytes] = []
    left = limit
    while left > 0 and (chunk := os.read(fd, min(left, 65536))):
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _kind(mode: int) -> str:
    """What a file that is not a regular one is, in words."""
    if stat.S_ISFIFO(mode):
        return "a FIFO (a named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_yaml(file: Path) -> tuple[Any, list[Repeat]]:
    """The policy file's YAML as plain data, and its keys written twice (each with the
    line saying it, ``budgets.scopes: line 9: key 'acme' appears twice ...``):
    PolicyError when it cannot be read, is not UTF-8 or is not YAML."""
    raw = read_policy_bytes(file)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise PolicyError(
            f"{file}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at line {line});"
            " save the file as UTF-8"
        ) from None
    loader = _StrictLoader(text)  # a SafeLoader: plain data only
    try:
        return loader.get_single_data(), loader.repeated
    except yaml.YAMLError as exc:
        raise PolicyError(f"{file}: not valid YAML: {exc}") from None
    finally:
        loader.dispose()


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _StrictLoader.construct_yaml_int)
_StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", _StrictLoader.construct_yaml_timestamp)
