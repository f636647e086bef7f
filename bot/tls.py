"""The TLS context of Nightshift's outgoing HTTP clients, made once per process.

httpx loads the whole CA bundle into a new context for every client it makes: 0.15-0.3 s
of CPU on a loaded machine, and each start made two (the job runner's and the webhook
sender's), while agents were refused. Both take this one instead, which is what httpx
makes for a client by default: certificates and host names verified against certifi's
bundle, or against ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when the environment sets one
(read at the first call). Each client keeps its own timeouts, limits and redirects;
a context holds no connection, so sharing it shares nothing else. (Slack's client is
aiohttp's, which keeps one verified context per process already.)

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
