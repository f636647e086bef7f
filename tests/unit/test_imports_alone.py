"""Every ``bot.*`` and ``guards.*`` module imports first, on its own, in a fresh process.

A circular import shows only when its cycle is entered at the wrong module: ``import
bot.webhooks_rows`` alone failed ("partially initialized module") while the app, the
tests and the doctests, which all reached it through ``bot.alerts`` first, never saw it.

One interpreter per module takes a minute here (most of it loading aiohttp, pydantic
and our pydantic policy models again each time), so:

- the import graph is read from the files (module-level imports, outside ``if
  TYPE_CHECKING:``; a module also imports its packages). Only a module on a cycle of it
  can fail because of the module it is entered at: one outside every cycle imports what
  it needs, each of which finishes before it goes on;
- one fresh interpreter loads the third-party libraries and the modules that need no
  module on a cycle (none of them can be part of one, so having them loaded and whole
  changes nothing in how a cycle runs), and checks that no other project module came
  with them;
- it forks a child for each module on a cycle: the child has no module of that cycle,
  nor anything needing one, loaded (a copy of an interpreter that never imported them,
  not a snapshot with entries deleted) and imports that module first;
- one more child imports every module in order, for any other import error.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot", "guards")

# ``python -m bot``'s entry runs the command line as it is imported; bot.entry, which
# it imports and calls, is checked like any other module
NOT_IMPORTED_ALONE = {"bot.__main__"}

DRIVER = r"""
import importlib, json, os, sys, traceback
for lib in ("aiohttp", "aiohttp.web", "aiosqlite", "apscheduler.schedulers.asyncio",
            "apscheduler.triggers.cron", "httpx", "pydantic", "pydantic_settings", "yaml",
            "prometheus_client", "slack_sdk.web.async_client", "slack_bolt.async_app"):
    importlib.import_module(lib)
whole, alone, every = (json.loads(arg) for arg in sys.argv[1:])
for name in whole:
    importlib.import_module(name)
ours = sorted(m for m in sys.modules if m.split(".")[0] in ("bot", "guards"))
if set(ours) - set(whole):
    print(json.dumps({"preloaded": sorted(set(ours) - set(whole))}))
    sys.exit(0)
failed, running = {}, {}

def reap():
    pid, status = os.wait()
    what, read_end = running.pop(pid)
    with os.fdopen(read_end) as out:
        said = out.read().strip()
    if status != 0:
        failed[what] = said.splitlines()[-1] if said else f"exit status {status}"

def child(what, names):
    if len(running) >= 2:
        reap()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        for name in names:
            try:
                importlib.import_module(name)
            except BaseException:
                os.write(write_end, f"{name}: {traceback.format_exc()}".encode())
                os._exit(1)
        os._exit(0)
    os.close(write_end)
    running[pid] = (what, read_end)

for name in alone:
    child(name, [name])
child("(each in order)", every)
while running:
    reap()
print(json.dumps({"failed": failed}))
"""


def modules() -> dict[str, Path]:
    """Every module of the two packages and its file, found without importing any."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imported(body: list[ast.stmt]) -> list[str]:
    """The dotted names a module body imports as it runs (a name may be a module)."""
    names: list[str] = []
    for node in body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module, f"relative import at line {node.lineno}"
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(node.test):
                names += _imported(node.body)
            names += _imported(node.orelse)
        elif isinstance(node, ast.Try):
            for part in (node.body, node.orelse, node.finalbody):
                names += _imported(part)
            for handler in node.handlers:
                names += _imported(handler.body)
    return names


def import_graph(found: dict[str, Path]) -> dict[str, set[str]]:
    """Module → the project modules (packages included) its import runs first."""
    graph: dict[str, set[str]] = {}
    for name, path in found.items():
        needs: set[str] = set()
        dotted = _imported(ast.parse(path.read_text(encoding="utf-8")).body)
        for other in [*dotted, name]:
            parts = other.split(".")
            needs |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
        graph[name] = {other for other in needs if other in found and other != name}
    return graph


def in_cycles(graph: dict[str, set[str]]) -> set[str]:
    """The modules on some import cycle (Tarjan's strongly connected components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cyclic: set[str] = set()

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = [stack.pop()]
            while component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                cyclic.update(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cyclic


def needing(graph: dict[str, set[str]], cyclic: set[str]) -> set[str]:
    """The modules on a cycle and those importing one of them, however indirectly."""
    found = set(cyclic)
    while grown := {name for name, needs in graph.items() if needs & found} - found:
        found |= grown
    return found


def test_the_graph_sees_a_cycle_through_a_package() -> None:
    graph = {"p": {"p.a"}, "p.a": {"p", "p.b"}, "p.b": {"p"}, "q": {"p.b"}, "r": set()}
    assert in_cycles(graph) == {"p", "p.a", "p.b"}
    assert needing(graph, in_cycles(graph)) == {"p", "p.a", "p.b", "q"}


def test_every_module_imports_first_on_its_own() -> None:
    found = modules()
    names = [name for name in found if name not in NOT_IMPORTED_ALONE]
    assert {"bot.webhooks_rows", "bot.alerts.model", "guards.tx"} <= set(names)
    graph = import_graph(found)
    cyclic = in_cycles(graph)
    whole = sorted(set(names) - needing(graph, cyclic))
    alone = sorted(cyclic - NOT_IMPORTED_ALONE)
    args = [json.dumps(group) for group in (whole, alone, names)]
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout.strip().splitlines()[-1])
    assert "preloaded" not in said, f"loaded before their turn: {said}: fix the graph"
    assert said["failed"] == {}, "\n".join(
        f"import {name} (first): {why}" for name, why in said["failed"].items()
    )
