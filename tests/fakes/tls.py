"""One TLS context for the tests' HTTP clients, made once per process.

The tests speak plain HTTP to 127.0.0.1, yet httpx loads the whole CA bundle into a new
context for every client it makes (``httpx.AsyncClient()``, and each ``httpx.get``):
0.1-0.2 s of CPU each on this machine, once per app a scenario test starts and once per
try of an end-to-end test's polling loop. A client given this one skips that:
``httpx.AsyncClient(base_url=url, verify=tls())``, ``httpx.get(url, verify=tls())``.

Example:
    >>> tls() is tls()  # made at the first call
    True
"""

from __future__ import annotations

import functools
import ssl

import httpx

__all__ = ["tls"]


@functools.cache
def tls() -> ssl.SSLContext:
    """The shared context: httpx's own default (certificates verified)."""
    return httpx.create_ssl_context()
