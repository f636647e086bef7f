"""wrk's side of the hot path benchmark: the Lua scripts that drive reserve→settle pairs
or reserves alone over keep-alive connections, and the run of wrk that reads their
result line.

Each connection keeps its reservations waiting for a settle; every reserve names a new
idempotency key (a prefix per thread and run, then a counter), over 64 agents in 8 users
of the namespace ``bench``.

Example:
    >>> "function request()" in LUA_PAIRS and "function request()" in LUA_RESERVE_ONLY
    True
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from typing import Any

__all__ = ["CONNECTIONS", "LUA_PAIRS", "LUA_RESERVE_ONLY", "wrk"]

CONNECTIONS = 64

LUA_COMMON = """
local token = os.getenv("NS_TOKEN") or "x"
local threads = {}
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end
function init(args)
  prefix = tostring(tid) .. "-" .. tostring(os.time()) .. "-"
    .. tostring(math.random(1, 1000000000))
  pending = {}
  n = 0
  pairs_done = 0
  reserved = 0
  refused = 0
  headers = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}
end
local function reserve_request()
  n = n + 1
  local body = '{"scope": "bench/u' .. (n % 8) .. '/agent' .. (n % 64) .. '", "idempotency_key": "'
    .. prefix .. '-' .. n .. '", "max_cost_micros": 1000}'
  return wrk.format("POST", "/v1/reservations", headers, body)
end
function done(summary, latency, requests)
  local p, r, f = 0, 0, 0
  for _, t in ipairs(threads) do
    p = p + (t:get("pairs_done") or 0)
    r = r + (t:get("reserved") or 0)
    f = f + (t:get("refused") or 0)
  end
  io.write(string.format(
    'RESULT {"requests": %d, "seconds": %f, "errors": %d, "non2xx": %d, '
    .. '"p50_us": %d, "p99_us": %d, "pairs": %d, "reserved": %d, "refused": %d}\\n',
    summary.requests, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50), latency:percentile(99), p, r, f))
end
"""

LUA_PAIRS = (
    LUA_COMMON
    + """
function request()
  local id = table.remove(pending)
  if id then
    return wrk.format("POST", "/v1/reservations/" .. id .. "/settle", headers,
      '{"actual_cost_micros": 700, "outcome": "success"}')
  end
  return reserve_request()
end
function response(status, hdrs, body)
  if status == 201 then
    reserved = reserved + 1
    local id = string.match(body, '"reservation_id": "([^"]+)"')
    if id then table.insert(pending, id) end
  elseif status == 200 then
    pairs_done = pairs_done + 1
  else
    refused = refused + 1
  end
end
"""
)

LUA_RESERVE_ONLY = (
    LUA_COMMON
    + """
function request() return reserve_request() end
function response(status, hdrs, body)
  if status == 201 then reserved = reserved + 1 else refused = refused + 1 end
end
"""
)


def wrk(url: str, script: str, seconds: int, token: str = "") -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
        path = f.name
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "5s", "-s", path, url],
            capture_output=True,
            text=True,
            env={**os.environ, "NS_TOKEN": token},
            timeout=seconds + 60,
        )
    finally:
        os.unlink(path)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[7:])
            result["rps"] = result["requests"] / result["seconds"]
            return result
    raise RuntimeError(f"wrk gave no result:\n{out.stdout}\n{out.stderr}")
