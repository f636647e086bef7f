"""The TLS context of Nightshift's outgoing HTTP clients, made once per process.

httpx loads the whole CA bundle into a new context for every client it makes: 0.15-0.3 s
of CPU on a loaded machine, and each start made two (the job runner's and the webhook
sender's), while agents were refused. Both take this one instead, which is what httpx
makes for a client by default: certificates and host names verified against certifi's
bundle, or against ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when the environment sets one
(read at the first call). Each client keeps its own timeouts, limits and redirects; a
context holds no connection, but it is not read-only: httpcore sets on it the protocols
it offers (ALPN) at each HTTPS connection, ``http/1.1`` alone, with ``h2`` for a client
made with ``http2=True``. Both clients here are HTTP/1.1 and so set the same; a client
for HTTP/2 must take a context of its own (``httpx.create_ssl_context()``), or the job
runner and the webhook sender would offer ``h2`` too (review28 R1 L2). (Slack's client
is aiohttp's, which keeps one verified context per process already.)

Example:
    >>> verified() is verified()
    True
    >>> verified().verify_mode == ssl.CERT_REQUIRED and verified().check_hostname
    True
"""

from __future__ import annotations

import functools
import ssl

import httpx

__all__ = ["verified"]


@functools.cache
def verified() -> ssl.SSLContext:
    """The context to pass as ``httpx.AsyncClient(verify=...)``: httpx's own default."""
    return httpx.create_ssl_context()
