"""In JSON-lines mode every line is JSON, Python's own "Exception ignored" ones too
(audit11 day-2 L3: they went to stderr raw, exactly the lines that matter)."""

from __future__ import annotations

import gc
import io
import json
import logging
import sys

from bot.logs import NOISY, setup_logging


class _Broken:
    def __del__(self) -> None:
        raise RuntimeError("boom in __del__")


def test_an_exception_python_ignores_is_one_json_line():
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, sys.unraisablehook)
    # setup_logging holds these at WARNING: put them back, or a later test in this worker
    # logging through one of them at INFO sees nothing (test_socket_logs did)
    held = {name: logging.getLogger(name).level for name in NOISY}
    out = io.StringIO()
    try:
        setup_logging(stream=out)
        obj = _Broken()
        del obj
        gc.collect()
    finally:
        root.handlers[:], _, sys.unraisablehook = saved[0], saved[1], saved[2]
        root.setLevel(saved[1])
        for name, level in held.items():
            logging.getLogger(name).setLevel(level)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    [line] = [x for x in lines if x["logger"] == "python"]
    assert line["level"] == "error" and "Exception ignored in" in line["msg"]
    assert "RuntimeError: boom in __del__" in line["exc"]
