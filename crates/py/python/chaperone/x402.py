"""Paying x402 (HTTP 402) APIs from httpx, within the wallet's policy.

``X402Transport`` (sync) and ``AsyncX402Transport`` (asyncio) send every request through
``chaperone.X402Client``, the Rust SDK's x402 client, so the payment logic is the SDK's own:
each payable requirement is co-signed by the policy service before anything goes back to the
merchant, a denial raises ``chaperone.Denied`` (every reason) before the merchant sees a
payment, the payment header goes only to the origin that asked, no redirect is followed with
it, and a payment sent is kept until the merchant serves the request (a retry presents the same
one).

    import httpx
    from chaperone import Wallet
    from chaperone.x402 import X402Transport, payment_of

    with httpx.Client(transport=X402Transport(wallet)) as http:
        response = http.get("https://api.example/forecast")
    payment = payment_of(response)  # an X402Payment, or None if nothing was paid

``ChaperoneExactEvmScheme`` plugs the same co-signed payments into the official ``x402``
package's ``x402Client``, with ``scheme.transport()`` under x402's ``x402_httpx_transport`` (see
its docstring for what that path does and does not guarantee).
"""

from __future__ import annotations

import math
from typing import Any

import httpx

from chaperone._native import Wallet, X402Client, X402Payment, X402Response
from chaperone._x402_scheme import ChaperoneExactEvmScheme, ChaperoneSchemeTransport, KeptPayment

__all__ = [
    "AsyncX402Transport",
    "ChaperoneExactEvmScheme",
    "ChaperoneSchemeTransport",
    "KeptPayment",
    "PAYMENT_EXTENSION",
    "X402Transport",
    "payment_of",
]

PAYMENT_EXTENSION = "chaperone.x402_payment"
"""The key of ``httpx.Response.extensions`` that holds the ``X402Payment`` made (or None)."""

URL_EXTENSION = "chaperone.x402_url"
"""The key of ``httpx.Response.extensions`` that holds the URL that answered."""


def _client(payer: Wallet | X402Client) -> X402Client:
    if isinstance(payer, X402Client):
        return payer
    if isinstance(payer, Wallet):
        return X402Client(payer)
    raise TypeError(f"pays from a chaperone.Wallet or X402Client, not {type(payer).__name__}")


def _timeout(request: httpx.Request) -> float | None:
    """httpx's timeouts as one bound on each HTTP exchange (the Rust client bounds an
    exchange as a whole): connect + write + read, 15 s with httpx's defaults; ``math.inf`` (no
    bound) when any of them is None, as the application asked httpx; None (the client's own
    default, 300 s) when httpx says nothing. A merchant that settles before it answers takes a
    few seconds."""
    timeout = request.extensions.get("timeout")
    if not isinstance(timeout, dict):
        return None
    parts = [timeout.get(name) for name in ("connect", "write", "read")]
    if any(part is None for part in parts):
        return math.inf
    return sum(float(part) for part in parts if part is not None)


def _response(answer: X402Response, request: httpx.Request) -> httpx.Response:
    # The body arrives whole and de-chunked (still encoded: httpx decodes Content-Encoding).
    headers = [(n, v) for n, v in answer.headers if n.lower() != b"transfer-encoding"]
    return httpx.Response(
        answer.status,
        headers=headers,
        stream=httpx.ByteStream(answer.body),
        request=request,
        extensions={
            PAYMENT_EXTENSION: answer.payment,
            URL_EXTENSION: answer.url,
            "http_version": answer.http_version.encode("ascii"),
        },
    )


def payment_of(response: httpx.Response) -> X402Payment | None:
    """The payment made for ``response`` by an x402 transport, or None if nothing was paid."""
    payment = response.extensions.get(PAYMENT_EXTENSION)
    return payment if isinstance(payment, X402Payment) else None


class X402Transport(httpx.BaseTransport):
    """An httpx transport that pays x402 resources from a Chaperone wallet, within its policy.

    ``httpx.Client(transport=X402Transport(wallet))``. Every request goes through the Rust
    ``X402Client`` (one per transport; pass your own to share its book of sent payments).
    The request's redirects are followed before any payment (so httpx's ``follow_redirects``
    only sees a 3xx answered to a paid request, which comes back as it is). The body of the
    answer is read whole. httpx's timeout bounds each HTTP exchange as a whole: its connect,
    write and read timeouts added up (15 s by default). Chaperone's errors come through as they are: ``Denied``,
    ``PendingAuthorization``, ``Refused`` (the wallet could never pay it),
    ``PaymentRefused`` and ``PaymentUnanswered`` (both carry the payment), ``Unreachable``.
    """

    def __init__(self, payer: Wallet | X402Client) -> None:
        self._client = _client(payer)

    @property
    def client(self) -> X402Client:
        """The Rust client every request goes through (its ``outstanding``, ``watch``, …)."""
        return self._client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        answer = self._client.send(
            request.method,
            str(request.url),
            headers=request.headers.raw,
            body=body or None,
            timeout=_timeout(request),
        )
        return _response(answer, request)


class AsyncX402Transport(httpx.AsyncBaseTransport):
    """``X402Transport`` for ``httpx.AsyncClient`` under asyncio: the request runs on the
    SDK's Tokio runtime and is awaited, so the event loop never blocks."""

    def __init__(self, payer: Wallet | X402Client) -> None:
        self._client = _client(payer)

    @property
    def client(self) -> X402Client:
        """The Rust client every request goes through."""
        return self._client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        answer = await self._client.send_async(
            request.method,
            str(request.url),
            headers=request.headers.raw,
            body=body or None,
            timeout=_timeout(request),
        )
        return _response(answer, request)


