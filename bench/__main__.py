"""``make bench``: every benchmark, one after another, each printing its own floor and ratios."""

from __future__ import annotations

import importlib
import time

BENCHES = [
    "bench.hotpath",
    "bench.slack_ack",
    "bench.dedup",
    "bench.routing_eval",
    "bench.alert_storm",
    "bench.digest",
]


def main() -> int:
    failed = []
    for name in BENCHES:
        started = time.monotonic()
        print(f"\n######## {name}", flush=True)
        module = importlib.import_module(name)
        try:
            code = module.main([]) if _takes_argv(module.main) else module.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        print(f"######## {name}: {time.monotonic() - started:.0f} s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"\nbenchmarks that did not complete: {', '.join(failed)}")
    return 1 if failed else 0


def _takes_argv(fn: object) -> bool:
    import inspect

    try:
        return bool(inspect.signature(fn).parameters)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


if __name__ == "__main__":
    raise SystemExit(main())
