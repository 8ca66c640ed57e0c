"""``ChaperoneExactEvmScheme``: co-signed payments for the official ``x402`` package's client,
with a book of the payments it sent, kept by the request they were for (as the Node scheme
keeps them). Re-exported by ``chaperone.x402``."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import secrets
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from chaperone._native import Invalid, PaymentRefused, Wallet, X402Client, X402Payment

MAX_KEPT = 256
"""The most payments a scheme keeps: past it, those the chain shows expired unused (and those
used and served) are dropped, and when none can be, the scheme pays nothing more (a settled
payment the merchant did not serve is never dropped: forgetting it would pay again)."""

ASK_FIELD = "chaperoneAsk"
"""The field the scheme's transport writes into the ``extra`` of each requirement of a 402:
the random id of the request that got it. x402's scheme protocol hands a scheme only the
requirement, so this is how the scheme learns the request's URL, method and body."""

MAX_NOTED = 1024
"""The most requests (and paid statuses) a scheme's transport notes, the oldest dropped first:
a 402 nobody pays leaves its note behind."""

MAX_402_BODY_BYTES = 64 * 1024
"""The most bytes of a 402's body the transport reads (x402 v1's requirements are a few
kilobytes): the x402 package reads a 402's body whole, and a merchant streaming one without end
would exhaust the agent's memory."""

PAYMENT_HEADERS = ("payment-signature", "x-payment")

ASKED_EXTENSION = "chaperone.asked"
"""The httpx request extension the transport marks the application's request with (its URL and
method) on its first unpaid hop: httpx copies a request's extensions into each redirect it
builds, so a later hop that carries another URL or method is a redirect."""

Key = tuple[str, str, str | None]
"""A request as the scheme keys its payment: URL, method, SHA-256 of the body (None: none)."""


@dataclass(frozen=True)
class _Asked:
    """The request that got a 402."""

    url: str
    method: str
    body: str | None

    @property
    def key(self) -> Key:
        return (self.url, self.method, self.body)


@dataclass
class _Paying:
    """A request's payment lock and how many hold or wait for it (counted under the book's
    lock), so the lock goes once nobody does."""

    lock: threading.Lock
    users: int = 0


@dataclass(frozen=True)
class KeptPayment:
    """A payment a scheme sent and keeps: the payment, the inner payload handed to x402, and
    its signature (the payload as JSON, sorted), by which the transport knows it."""

    payment: X402Payment
    inner: dict[str, Any]
    signature: str


def _signature(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))


def _decode(value: str) -> Any:
    """A base64 JSON header decoded exactly as the x402 package decodes it (``b64decode``,
    UTF-8, ``json.loads``); None when it could not read it either. Decoding any other way could
    see other requirements than the ones it pays."""
    try:
        return json.loads(base64.b64decode(value.encode("utf-8")).decode("utf-8"))
    except (ValueError, UnicodeError, RecursionError):
        # RecursionError: a merchant's JSON nested deeper than the interpreter's stack.
        return None


def _encode(value: Any) -> str:
    return base64.b64encode(json.dumps(value).encode("utf-8")).decode("ascii")


def _tag(required: Any, ask_id: str) -> bool:
    """Writes ``ask_id`` into the ``extra`` of every requirement of ``required`` (the merchant's
    own ``chaperoneAsk`` overwritten); whether it holds any."""
    accepts = required.get("accepts") if isinstance(required, dict) else None
    if not isinstance(accepts, list):
        return False
    tagged = False
    for accept in accepts:
        if not isinstance(accept, dict):
            continue
        extra = accept.get("extra")
        if extra is None:
            extra = accept["extra"] = {}
        if isinstance(extra, dict):
            extra[ASK_FIELD] = ask_id
            tagged = True
    return tagged


class _NoteWhenRead(httpx.AsyncByteStream):
    """A paid answer's body that calls ``on_end`` once read to the end: a body that breaks off
    or is never read served nothing."""

    def __init__(self, stream: httpx.AsyncByteStream, on_end: Callable[[], None]) -> None:
        self._stream = stream
        self._on_end = on_end

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk
        self._on_end()

    async def aclose(self) -> None:
        await self._stream.aclose()


class ChaperoneSchemeTransport(httpx.AsyncBaseTransport):
    """The httpx transport a ``ChaperoneExactEvmScheme`` needs under x402's
    ``x402_httpx_transport`` (``scheme.transport()``): it writes the id of the request that got
    each 402 into the 402's requirements, reads a 402's body at most 64 KiB, sends a scheme's
    payment to no URL but the one it was made for, and notes whether the merchant served each
    paid request (a 2xx whose body was read to the end)."""

    def __init__(
        self, scheme: ChaperoneExactEvmScheme, inner: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._scheme = scheme
        self._inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        names = [n for n in PAYMENT_HEADERS if n in request.headers]
        if names:
            return await self._paid(request, names)
        # The first unpaid hop marks the application's request; httpx copies the mark into the
        # redirects it builds (from the application's request: never with the payment).
        first = (str(request.url), request.method)
        asked_first = request.extensions.setdefault(ASKED_EXTENSION, first)
        body = await request.aread()
        digest = hashlib.sha256(body).hexdigest() if body else None
        asked = _Asked(str(request.url), request.method, digest)
        response = await self._inner.handle_async_request(request)
        if response.status_code != 402:
            return response
        if asked_first != first:
            # Keyed on each hop's URL, a merchant redirecting to a fresh URL per retry (or after
            # each paid answer, within one call) would get a new payment per hop.
            await response.aclose()
            if isinstance(asked_first, tuple) and len(asked_first) == 2:
                origin = f"{asked_first[1]} {asked_first[0]}"
            else:
                origin = "the request"  # The application's own value under our extension.
            raise Invalid(
                f"{origin} was redirected to {request.method} {request.url}, which asks for "
                "payment: pay only the URL you asked"
            )
        return await self._tagged_402(response, request, asked)

    async def _paid(self, request: httpx.Request, names: list[str]) -> httpx.Response:
        # Every payment header is checked: a kept payment behind one the scheme does not know
        # would otherwise reach another URL.
        signatures = [s for s in (self._checked(request, n) for n in names) if s is not None]
        response = await self._inner.handle_async_request(request)
        if not signatures:
            return response
        status = response.status_code
        if not 200 <= status < 300:
            for signature in signatures:
                self._scheme._note_status(signature, status)
            return response
        # Served only once the whole body came: one that breaks off or stalls served nothing.
        stream = response.stream
        if not isinstance(stream, httpx.AsyncByteStream):
            raise TypeError("ChaperoneSchemeTransport wraps an async httpx transport")
        def served() -> None:
            for signature in signatures:
                self._scheme._note_status(signature, status)

        response.stream = _NoteWhenRead(stream, served)
        return response

    def _checked(self, request: httpx.Request, name: str) -> str | None:
        """The signature of payment header ``name`` (None: not an x402 payment), its request id
        taken out; ``Invalid`` if it carries a kept payment made for another URL."""
        header = _decode(request.headers[name])
        if not isinstance(header, dict):
            return None
        accepted = header.get("accepted")
        extra = accepted.get("extra") if isinstance(accepted, dict) else None
        if isinstance(extra, dict) and ASK_FIELD in extra:
            # x402 echoes the requirement it paid: the request's id goes back to nobody.
            del extra[ASK_FIELD]
            request.headers[name] = _encode(header)
        signature = _signature(header.get("payload"))
        resource = self._scheme._resource_of(signature)
        if resource is not None and resource != str(request.url):
            raise Invalid(
                f"a payment made for {resource} is not sent to {request.url}: a payment "
                "goes only to the URL that asked for it"
            )
        return signature

    async def _tagged_402(
        self, response: httpx.Response, request: httpx.Request, asked: _Asked
    ) -> httpx.Response:
        ask_id = secrets.token_hex(16)
        headers = [
            (n, v)
            for n, v in response.headers.multi_items()
            if n.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        header = response.headers.get("payment-required")
        body = b""
        if header:
            required = _decode(header)
            await response.aclose()
            if not isinstance(required, dict):
                raise Invalid(
                    f"{request.url} answered 402 with a Payment-Required header that is not x402 "
                    "requirements"
                )
            if _tag(required, ask_id):
                self._scheme._note_ask(ask_id, asked)
            headers = [(n, v) for n, v in headers if n.lower() != "payment-required"]
            headers.append(("payment-required", _encode(required)))
            # The requirements are the header's: the body is read for nobody.
        else:
            read = await self._read_at_most(response, MAX_402_BODY_BYTES)
            if read is None:
                raise Invalid(
                    f"{request.url} answered 402 with a body larger than {MAX_402_BODY_BYTES} "
                    "bytes and no Payment-Required header"
                )
            body = read
            try:
                required = json.loads(read)
            except ValueError:
                required = None  # Not x402's: the x402 package reports it.
            except RecursionError:
                raise Invalid(
                    f"{request.url} answered 402 with a body nested deeper than JSON can be read"
                ) from None
            if isinstance(required, dict) and required.get("x402Version") == 1:
                if _tag(required, ask_id):
                    self._scheme._note_ask(ask_id, asked)
                body = json.dumps(required).encode("utf-8")
        return httpx.Response(
            402, headers=headers, content=body, request=request, extensions=response.extensions
        )

    @staticmethod
    async def _read_at_most(response: httpx.Response, limit: int) -> bytes | None:
        chunks: list[bytes] = []
        length = 0
        try:
            async for chunk in response.aiter_bytes():
                length += len(chunk)
                if length > limit:
                    return None
                chunks.append(chunk)
        finally:
            await response.aclose()
        return b"".join(chunks)

    async def aclose(self) -> None:
        await self._inner.aclose()


class ChaperoneExactEvmScheme:
    """The "exact" EVM scheme for the official ``x402`` package's ``x402Client``, paying from
    a Chaperone wallet, with its transport under x402's:

        scheme = ChaperoneExactEvmScheme(wallet)
        client = x402Client()
        client.register(f"eip155:{wallet.chain_id}", scheme)
        transport = x402_httpx_transport(client, transport=scheme.transport())
        async with httpx.AsyncClient(transport=transport) as http:
            response = await http.get(url)

    Why a scheme and not a signer: x402's ``ExactEvmScheme`` builds the EIP-3009
    authorization itself, with a random nonce and ``validAfter = 0``, and asks a
    ``ClientEvmSigner`` only to sign that typed data. An ``AgentWallet``'s EIP-1271
    ``isValidSignature`` accepts only the nonces of its authorization budget's slots for the
    current period (``(period << 192) | slot``), which is what bounds what leaves the wallet
    even with both keys stolen; a signer cannot change the message it is handed, so its
    signature would be refused by the wallet. A scheme builds the whole payload: this one has
    the Rust SDK pick the requirement's method, nonce and validity and get the co-signature
    (``X402Client.authorize``), exactly as ``X402Client`` does.

    The transport (``scheme.transport()``, under ``x402_httpx_transport``) is required: x402
    hands a scheme only the requirement, so the transport writes the id of the request that got
    each 402 into its requirements. A requirement without one co-signs nothing
    (``chaperone.Invalid``): without it the scheme knows neither the request a payment is for
    nor whether the merchant served it. The payment record names that request's URL (never the
    402's own ``resource``, which the merchant writes); ``resource``, if given, must be it.

    Each co-signed payment holds one of the wallet's authorization slots for the period until
    it is used or expires, so a merchant that keeps refusing must not get a new one per retry
    (x402's own "recovery" asks for a new payment too). The scheme keeps each payment by the
    request it was made for: its URL, method and body, never what the merchant writes. Asked
    again for the same request, it presents the same payment while the chain shows it usable
    (``X402Client.standing``, in chain time). A kept payment is forgotten only on the chain's
    word: once its validity is over and it was never used (then a new one is signed), or once
    it was used and the merchant served the request (a 2xx seen by the transport, its body read
    to the end: read the answer's body), so that the next purchase is a new one. A merchant's
    ``PAYMENT-RESPONSE`` claim never counts. A payment the chain shows used for a request the
    merchant did not serve is not paid again: ``PaymentRefused`` carrying it (delete it from
    ``kept`` to pay anew). At most 256 payments are kept; past that, those expired unused or
    served are dropped, and when none can be, nothing more is co-signed (``Invalid``). The
    transport sends a kept payment to no URL but its own (every payment header is checked),
    and reads a 402's body at most 64 KiB.

    Redirects: a payment goes only to the URL the application asked for. httpx follows
    redirects above the transport, so each hop would be a new request to the book, with a new
    payment: a merchant redirecting to a fresh URL per retry, or answering each paid request
    with a redirect to one that asks again, would be paid per hop. The transport marks the
    application's request on its first unpaid hop (the ``chaperone.asked`` extension, which
    httpx copies into each redirect), and a 402 on a hop to another URL or method co-signs
    nothing: ``Invalid`` ("redirected to …, which asks for payment: pay only the URL you
    asked"), raised as it is, not as x402's ``PaymentError``. A paid request's redirect is
    built by httpx from the application's request and never carries the payment.

    What the x402 package's own HTTP flow does is its own: it catches every error of payment
    creation and raises its ``PaymentError`` with the Chaperone error (``Denied``, with every
    reason; ``PaymentRefused``) as ``__cause__``, and its selector picks one requirement
    (Chaperone's client tries the payable ones in turn). ``X402Transport`` has all of
    Chaperone's guarantees without it. ``create_payment_payload`` is synchronous in x402's
    protocol, so from the async ``x402Client`` the co-signing blocks the event loop while it
    runs. Only the httpx transport is covered: the ``requests`` adapter and
    ``x402ClientSync`` carry no request id, so the scheme co-signs nothing through them.

    Each payment made is appended to ``payments`` (for ``X402Payment.record_metadata`` and
    ``Wallet.bind_to_call``); the merchant's settlement is in x402's response headers, not in
    these records: check the chain with ``X402Payment.find_settlement``.
    """

    scheme = "exact"

    def __init__(self, payer: Wallet | X402Client, *, resource: str | None = None) -> None:
        if isinstance(payer, X402Client):
            self._client = payer
        elif isinstance(payer, Wallet):
            self._client = X402Client(payer)
        else:
            raise TypeError(
                f"pays from a chaperone.Wallet or X402Client, not {type(payer).__name__}"
            )
        self.resource = resource
        """If given, the URL every payment must be for (``Invalid`` otherwise)."""
        self.payments: list[X402Payment] = []
        """Every payment this scheme made, oldest first."""
        self.kept: dict[Key, KeptPayment] = {}
        """Payments sent and not yet known expired, or settled and served, by request."""
        self._book = threading.Lock()
        self._paying: dict[Key, _Paying] = {}
        # Requests paying a new payment: each holds a place in `kept` before it co-signs, so
        # concurrent payments for different requests cannot overshoot MAX_KEPT.
        self._reserved: set[Key] = set()
        self._asks: OrderedDict[str, _Asked] = OrderedDict()
        self._statuses: OrderedDict[str, int] = OrderedDict()

    def transport(self, inner: httpx.AsyncBaseTransport | None = None) -> ChaperoneSchemeTransport:
        """The httpx transport to pass x402's ``x402_httpx_transport(client, transport=...)``
        (``inner``: the one it sends with, httpx's own by default)."""
        return ChaperoneSchemeTransport(self, inner)

    def create_payment_payload(
        self,
        requirements: Any,
        extensions: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The inner payload (``authorization`` and ``signature``, or Permit2's) for
        ``requirements`` (an x402 ``PaymentRequirements`` or ``PaymentRequirementsV1``) of the
        request the transport noted: the payment kept for it while usable, else a new one
        co-signed within the policy (``chaperone.Denied`` when the policy denies it)."""
        requirement = requirements.model_dump(by_alias=True, exclude_none=True)
        extra = requirement.get("extra")
        ask_id = extra.pop(ASK_FIELD, None) if isinstance(extra, dict) else None
        with self._book:
            asked = self._asks.get(ask_id) if isinstance(ask_id, str) else None
        if asked is None:
            raise Invalid(
                "ChaperoneExactEvmScheme does not know the request that asked for this payment: "
                "send through its transport (x402_httpx_transport(client, "
                "transport=scheme.transport()))"
            )
        if self.resource is not None and self.resource != asked.url:
            raise Invalid(
                f"{asked.url} asks for payment, but this scheme was given the resource "
                f"{self.resource}: a payment names, and goes to, the URL that asked (pass no "
                "resource, or that URL)"
            )
        version = 1 if "maxAmountRequired" in requirement else 2
        required: dict[str, Any] = {"x402Version": version, "accepts": [requirement]}
        if version == 2 and extensions:
            required["extensions"] = extensions
        # One payment decision at a time per request: a concurrent payment for it waits, then
        # finds this one kept.
        with self._paying_for(asked.key):
            return self._pay(asked, required)

    @contextmanager
    def _paying_for(self, key: Key) -> Iterator[None]:
        """Holds request ``key``'s payment lock; the lock is dropped once nobody holds or waits
        for it (as Rust's ``forget_lock``), so the locks do not grow with every URL paid."""
        with self._book:
            paying = self._paying.get(key)
            if paying is None:
                paying = self._paying[key] = _Paying(threading.Lock())
            paying.users += 1
        try:
            with paying.lock:
                yield
        finally:
            with self._book:
                paying.users -= 1
                if paying.users == 0 and self._paying.get(key) is paying:
                    del self._paying[key]

    def _pay(self, asked: _Asked, required: dict[str, Any]) -> dict[str, Any]:
        key = asked.key
        with self._book:
            presented = self.kept.get(key)
        if presented is not None:
            state, settlement = self._client.standing(presented.payment)
            if state == "usable":
                # The merchant may still settle it: the same authorization again, no new slot.
                return copy.deepcopy(presented.inner)
            if state == "settled" and not self._served(presented):
                # Only the answer itself says it was served, never the merchant's claim.
                error = PaymentRefused(
                    f"{asked.url} asks for payment again, but this request's payment was used in "
                    f"transaction {settlement.transaction if settlement else '?'} and the "
                    "merchant did not serve it"
                )
                error.request_id = presented.payment.request_id
                error.reason = "paid, and asked for payment again"
                error.payment = presented.payment
                raise error
            # Expired unused, or used and served: the next purchase is a new one.
            with self._book:
                if self.kept.get(key) is presented:
                    del self.kept[key]
        self._reserve(key)
        try:
            payment = self._client.authorize(asked.url, json.dumps(required))
            header = json.loads(base64.b64decode(payment.payload))
            inner: dict[str, Any] = header["payload"]
            with self._book:
                self.payments.append(payment)
                self.kept[key] = KeptPayment(payment, copy.deepcopy(inner), _signature(inner))
        finally:
            with self._book:
                self._reserved.discard(key)
        return inner

    def _reserve(self, key: Key) -> None:
        """Holds a place in ``kept`` for request ``key``'s new payment: drops the entries the
        chain shows expired unused, or used and served, when the book is full; raises
        ``Invalid`` when none can go. Never by the local clock, and never a settled payment the
        merchant did not serve."""
        with self._book:
            if len(self.kept) + len(self._reserved) < MAX_KEPT:
                self._reserved.add(key)
                return
            entries = list(self.kept.items())
        for old, entry in entries:
            state, _ = self._client.standing(entry.payment)
            if state == "expired" or (state == "settled" and self._served(entry)):
                with self._book:
                    if self.kept.get(old) is entry:
                        del self.kept[old]
        with self._book:
            if len(self.kept) + len(self._reserved) >= MAX_KEPT:
                raise Invalid(
                    f"this scheme keeps {len(self.kept)} payments still usable or settled and not "
                    "served, its most: it pays nothing more (delete entries from scheme.kept to "
                    "pay anew)"
                )
            self._reserved.add(key)

    def _served(self, entry: KeptPayment) -> bool:
        """Whether the merchant served the request ``entry`` was sent for (a 2xx whose body was
        read to the end, seen by the transport); a status never seen, or dropped past
        ``MAX_NOTED``, counts as not served: the safe side."""
        with self._book:
            status = self._statuses.get(entry.signature)
        return status is not None and 200 <= status < 300

    def _resource_of(self, signature: str) -> str | None:
        """The URL the kept payment with ``signature`` was made for, or None if not kept."""
        with self._book:
            for (url, _, _), entry in self.kept.items():
                if entry.signature == signature:
                    return url
        return None

    def _note_ask(self, ask_id: str, asked: _Asked) -> None:
        with self._book:
            _note(self._asks, ask_id, asked)

    def _note_status(self, signature: str, status: int) -> None:
        with self._book:
            _note(self._statuses, signature, status)


def _note(noted: OrderedDict[str, Any], key: str, value: Any) -> None:
    """Notes ``value`` under ``key``, dropping the oldest past ``MAX_NOTED``."""
    noted.pop(key, None)
    noted[key] = value
    while len(noted) > MAX_NOTED:
        noted.popitem(last=False)
