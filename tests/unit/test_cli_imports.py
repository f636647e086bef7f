"""A command imports what it needs: an operator's ``token list`` at 3 a.m. waited on the
server's aiohttp (bot.logs imported it for one isinstance: 40% of a CLI start), the
policy's models and every other command's module."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from bot.cli import CLI_MODULES, COMMANDS, build_parser, load_cli_commands

# what only `run` (or the demo) needs: the server, Slack, the scheduler, the policy's models
SERVER_ONLY = (
    "aiohttp",
    "httpx",
    "slack_sdk",
    "slack_bolt",
    "apscheduler",
    "bot.app",
    "bot.cli_run",
    "guards.config",
)

DRIVER = r"""
import json, sys
from bot.cli import main
db = sys.argv[1]
codes = [main(["--db", db, *argv.split()]) for argv in ("migrate", "token list", "ledger verify")]
print(json.dumps({"codes": codes, "loaded": [m for m in sys.argv[2:] if m in sys.modules]}))
"""


def test_the_database_commands_load_no_server_module(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", DRIVER, str(tmp_path / "ns.db"), *SERVER_ONLY],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    said = json.loads(out.stdout.strip().splitlines()[-1])
    assert said == {"codes": [0, 0, 0], "loaded": []}, out.stderr


def test_each_command_is_registered_by_the_module_named_for_it() -> None:
    """CLI_MODULES names the module that registers each command the parser takes."""
    load_cli_commands()
    (sub,) = (a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(CLI_MODULES) == set(sub.choices)
    for name, fn in COMMANDS.items():
        assert fn.__module__ == CLI_MODULES[name.split()[0]], name
    assert {name.split()[0] for name in COMMANDS} == set(CLI_MODULES)
