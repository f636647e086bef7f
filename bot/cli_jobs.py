"""``nightshift jobs preview``: the policy's scheduled jobs in words, with their next fires.

Example:
    >>> # nightshift --config nightshift.yml jobs preview --secrets
"""

from __future__ import annotations

import argparse
import sys
import time

from bot.cli import absent, command, current_db
from bot.jobs.lint import lint_jobs, refused_jobs
from bot.settings import Settings
from guards.config import load_policy
from guards.store import Store
from guards.words import plural

__all__ = ["cmd_jobs_preview"]


@command("jobs preview")
async def cmd_jobs_preview(args: argparse.Namespace, settings: Settings) -> int:
    """The policy's jobs in words with their next fire times; 1 when any is refused."""
    if absent(settings.config):
        print(f"no policy file at {settings.config}: the built-in defaults have no jobs")
        if "config" in settings.model_fields_set:  # named, yet absent: a typo, probably
            print(
                f"nightshift: warning: {settings.config} was named (NIGHTSHIFT_CONFIG or"
                " --config) but does not exist: check the path",
                file=sys.stderr,
            )
        return 0
    policy = load_policy(settings.config, also=refused_jobs)
    plans = lint_jobs(policy, now=time.time())
    if not plans:
        print(f"{settings.config} has no jobs")
        return 0
    secrets: dict[str, str] = {}
    if args.secrets:
        from bot.jobs import state

        current_db(settings)  # the secrets derive from the key in the server's database
        store = await Store.open(settings.db)
        try:
            key = await store.write(state.secret_key)
        finally:
            await store.close()
        secrets = {j.name: j.secret or state.derived_secret(key, j.name) for j in policy.jobs}
    for plan in plans:
        print("\n".join(plan.lines()))
        if plan.name in secrets:
            print(f"  secret (X-Nightshift-Job-Secret): {secrets[plan.name]}")
        print()
    refused = [p.name for p in plans if p.refused]
    if refused:
        print(f"{len(refused)} of {plural(len(plans), 'job')} refused: {', '.join(refused)}")
        return 1
    print(f"{plural(len(plans), 'job')} OK")
    return 0
