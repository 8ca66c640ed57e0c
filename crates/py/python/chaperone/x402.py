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
package's ``x402Client`` (see its docstring for what that path does and does not guarantee).
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import httpx

from chaperone._native import Invalid, Wallet, X402Client, X402Payment, X402Response

__all__ = [
    "AsyncX402Transport",
    "ChaperoneExactEvmScheme",
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


class ChaperoneExactEvmScheme:
    """The "exact" EVM scheme for the official ``x402`` package's ``x402Client`` /
    ``x402ClientSync``, paying from a Chaperone wallet:

        client = x402ClientSync()
        client.register(f"eip155:{wallet.chain_id}", ChaperoneExactEvmScheme(wallet))

    Why a scheme and not a signer: x402's ``ExactEvmScheme`` builds the EIP-3009
    authorization itself, with a random nonce and ``validAfter = 0``, and asks a
    ``ClientEvmSigner`` only to sign that typed data. An ``AgentWallet``'s EIP-1271
    ``isValidSignature`` accepts only the nonces of its authorization budget's slots for the
    current period (``(period << 192) | slot``), which is what bounds what leaves the wallet
    even with both keys stolen; a signer cannot change the message it is handed, so its
    signature would be refused by the wallet. A scheme builds the whole payload: this one has
    the Rust SDK pick the requirement's method, nonce and validity and get the co-signature
    (``X402Client.authorize``), exactly as ``X402Client`` does.

    What the x402 package's own HTTP flow does is its own: it catches every error of payment
    creation and raises its ``PaymentError`` with the Chaperone error (``Denied``, with every
    reason) as ``__cause__``; its selector picks one requirement (Chaperone's client tries the
    payable ones in turn); and it keeps no book of payments sent (a refused payment's
    "recovery" signs a new one). Use ``X402Transport`` for Chaperone's guarantees.
    ``create_payment_payload`` is synchronous in x402's protocol, so from the async
    ``x402Client`` the co-signing blocks the event loop while it runs.

    Each payment made is appended to ``payments`` (for ``X402Payment.record_metadata`` and
    ``Wallet.bind_to_call``); the merchant's settlement is in x402's response headers, not in
    these records: check the chain with ``X402Payment.find_settlement``.
    """

    scheme = "exact"

    def __init__(self, payer: Wallet | X402Client, *, resource: str = "") -> None:
        self._client = _client(payer)
        self.resource = resource
        """The URL named in the payment records (x402's scheme protocol does not pass it):
        required, nothing is co-signed without it (``chaperone.Invalid``)."""
        self.payments: list[X402Payment] = []

    def create_payment_payload(
        self, requirements: Any, extensions: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The inner payload (``authorization`` and ``signature``, or Permit2's) for
        ``requirements`` (an x402 ``PaymentRequirements`` or ``PaymentRequirementsV1``),
        co-signed within the policy; raises ``chaperone.Denied`` when the policy denies it."""
        if not self.resource:
            # The x402 package hands a scheme only the requirement, and the 402's own
            # ``resource.url`` is the merchant's to write: a payment record must name the URL
            # that asked, so without it nothing is co-signed (as the Node scheme refuses).
            raise Invalid(
                "ChaperoneExactEvmScheme does not know the URL that asked for this payment: "
                "pass ChaperoneExactEvmScheme(wallet, resource=url)"
            )
        requirement = requirements.model_dump(by_alias=True, exclude_none=True)
        version = 1 if "maxAmountRequired" in requirement else 2
        required = {"x402Version": version, "accepts": [requirement]}
        if version == 2 and extensions:
            required["extensions"] = extensions
        payment = self._client.authorize(self.resource, json.dumps(required))
        self.payments.append(payment)
        header = json.loads(base64.b64decode(payment.payload))
        inner: dict[str, Any] = header["payload"]
        return inner
