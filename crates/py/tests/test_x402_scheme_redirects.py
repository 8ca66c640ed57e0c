"""Red-team (the fifth review of issue 31): ``ChaperoneExactEvmScheme``'s book against a hostile
merchant that redirects, through the real ``x402`` client and httpx, with an
``httpx.MockTransport`` merchant.

The co-signer and the chain are stood in for (``authorize``/``standing`` answered here): the
devnet's demo wallet has about ten EIP-3009 slots per period, shared by the whole suite, and
these attacks need many payments (up to httpx's 20 redirects in one call) and chain states
(settled, not served) a real merchant would have to be scripted into."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from typing import Any

import httpx
import pytest

import chaperone._x402_scheme as mod
from chaperone import Invalid

CHAIN = "eip155:31337"
REQ = {
    "scheme": "exact",
    "network": CHAIN,
    "amount": "10",
    "asset": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    "payTo": "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720",
    "maxTimeoutSeconds": 60,
    "extra": {"name": "Test Token", "version": "1"},
}
_n = itertools.count()


class Payment:
    """A co-signed payment as the stub hands it out: a distinct nonce each."""

    def __init__(self, resource: str, required: dict[str, Any]) -> None:
        i = next(_n)
        self.resource = resource
        self.request_id = f"r{i}"
        nonce = "0x" + format(i, "064x")
        header = {
            "x402Version": 2,
            "payload": {"authorization": {"nonce": nonce}, "signature": "0x" + "ab" * 65},
            "accepted": required["accepts"][0],
        }
        self.payload = base64.b64encode(json.dumps(header).encode()).decode()


class StubClient:
    """``authorize`` co-signs a distinct payment; ``standing`` answers ``state(payment)``."""

    def __init__(self, state: Any = lambda p: "usable") -> None:
        self.state = state
        self.authorized: list[Payment] = []

    def authorize(self, resource: str, required: str) -> Payment:
        p = Payment(resource, json.loads(required))
        self.authorized.append(p)
        return p

    def standing(self, payment: Payment) -> tuple[str, Any]:
        return self.state(payment), None


def scheme_with(
    client: StubClient, monkeypatch: pytest.MonkeyPatch
) -> mod.ChaperoneExactEvmScheme:
    monkeypatch.setattr(mod, "X402Client", StubClient)
    return mod.ChaperoneExactEvmScheme(client)  # type: ignore[arg-type]


def get_through(
    scheme: Any, merchant: httpx.MockTransport, url: str, **client: Any
) -> httpx.Response:
    from x402 import x402Client
    from x402.http.clients.httpx import x402_httpx_transport

    x = x402Client()
    x.register(CHAIN, scheme)
    x.set_spend_controls(False)
    transport = x402_httpx_transport(x, transport=scheme.transport(merchant))

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, **client) as http:
            r = await http.get(url)
            await r.aread()
            return r

    return asyncio.run(go())


def four02(url: str) -> httpx.Response:
    body = {"x402Version": 2, "error": "payment", "resource": {"url": url}, "accepts": [REQ]}
    return httpx.Response(
        402, headers={"Payment-Required": base64.b64encode(json.dumps(body).encode()).decode()}
    )


def test_red_team_a_redirect_to_a_url_that_asks_for_payment_co_signs_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The merchant redirects each unpaid GET /buy to /pay?n=<fresh> and refuses (402) every
    payment: keyed on the URL after httpx's redirects, each retry of the application's request
    was a new key and a new co-signed authorization. A 402 on a redirect now pays nothing."""
    client = StubClient()
    scheme = scheme_with(client, monkeypatch)
    fresh = itertools.count()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/buy":
            return httpx.Response(302, headers={"Location": f"/pay?n={next(fresh)}"})
        return four02(str(request.url))

    merchant = httpx.MockTransport(handler)
    for _ in range(3):
        with pytest.raises(Invalid, match="which asks for payment: pay only the URL you asked"):
            get_through(scheme, merchant, "https://shop.example/buy", follow_redirects=True)
    assert client.authorized == []
    assert scheme.kept == {}


def test_the_same_request_without_redirects_presents_one_authorization(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Control: the same refusing merchant without the redirect gets one authorization."""
    client = StubClient()
    scheme = scheme_with(client, monkeypatch)
    merchant = httpx.MockTransport(lambda request: four02(str(request.url)))
    for _ in range(3):
        assert get_through(scheme, merchant, "https://shop.example/pay").status_code == 402
    assert len(client.authorized) == 1
    assert scheme._paying == {}, "a request's lock outlives its payment"


def test_red_team_a_settled_unserved_payment_is_not_paid_again_behind_a_fresh_redirect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As the fourth review's PaymentRefused case (settled, answered 402), but the merchant
    redirects each unpaid request to a fresh URL: every retry co-signed (and the merchant
    settled) a new payment."""
    client = StubClient(state=lambda p: "settled")
    scheme = scheme_with(client, monkeypatch)
    fresh = itertools.count()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/buy" and "payment-signature" not in request.headers:
            return httpx.Response(302, headers={"Location": f"/pay?n={next(fresh)}"})
        return four02(str(request.url))

    merchant = httpx.MockTransport(handler)
    for _ in range(3):
        with pytest.raises(Invalid, match="pay only the URL you asked"):
            get_through(scheme, merchant, "https://shop.example/buy", follow_redirects=True)
    assert client.authorized == []


def test_red_team_one_request_pays_once_however_its_paid_answer_redirects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ONE ``http.get`` (follow_redirects=True): the merchant settles each payment and answers
    the paid request 302 to a fresh URL that asks again. httpx rebuilds the redirect from the
    application's request (no payment header): the scheme co-signed a new authorization per
    redirect, up to httpx's 20, within the one call. The redirect carries no payment."""
    client = StubClient(state=lambda p: "settled")
    scheme = scheme_with(client, monkeypatch)
    fresh = itertools.count(1)
    hops: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hops.append(request)
        if request.headers.get("payment-signature") is not None:
            return httpx.Response(302, headers={"Location": f"/buy?n={next(fresh)}"})
        return four02(str(request.url))

    merchant = httpx.MockTransport(handler)
    with pytest.raises(Invalid, match=r"buy\?n=1, which asks for payment"):
        get_through(scheme, merchant, "https://shop.example/buy", follow_redirects=True)
    assert len(client.authorized) == 1
    redirected = [r for r in hops if r.url.query]
    assert len(redirected) == 1
    assert not any(n in redirected[0].headers for n in mod.PAYMENT_HEADERS)


def test_a_paid_requests_redirect_never_carries_the_payment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The paid request's 302 to a URL that serves for free: the hop carries no payment
    header, and a redirect that asks for nothing is followed as usual."""
    client = StubClient()
    scheme = scheme_with(client, monkeypatch)
    hops: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hops.append(request)
        if request.url.path == "/elsewhere":
            return httpx.Response(200, content=b"free")
        if request.headers.get("payment-signature") is not None:
            return httpx.Response(302, headers={"Location": "https://other.example/elsewhere"})
        return four02(str(request.url))

    merchant = httpx.MockTransport(handler)
    r = get_through(scheme, merchant, "https://shop.example/buy", follow_redirects=True)
    assert r.status_code == 200 and r.content == b"free"
    assert len(client.authorized) == 1
    assert hops[-1].url.path == "/elsewhere"
    assert not any(n in hops[-1].headers for n in mod.PAYMENT_HEADERS)


def test_red_team_a_deeply_nested_402_is_invalid_not_a_recursion_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A v1 402 body (no Payment-Required header) of 60,000 '[' (under the 64 KiB bar), and the
    same in the header: ``json.loads`` raises RecursionError, which escaped the transport."""
    scheme = scheme_with(StubClient(), monkeypatch)
    merchant = httpx.MockTransport(lambda r: httpx.Response(402, content=b"[" * 60000))
    with pytest.raises(Invalid, match="nested"):
        get_through(scheme, merchant, "https://shop.example/pay")
    nested = base64.b64encode(b"[" * 60000).decode()
    merchant = httpx.MockTransport(
        lambda r: httpx.Response(402, headers={"Payment-Required": nested})
    )
    with pytest.raises(Invalid, match="not x402 requirements"):
        get_through(scheme, merchant, "https://shop.example/pay")


def test_red_team_every_payment_header_goes_only_to_its_own_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request carrying a kept payment in ``X-PAYMENT`` to another URL, behind a
    ``PAYMENT-SIGNATURE`` the scheme does not know: only the first header was checked."""
    client = StubClient()
    scheme = scheme_with(client, monkeypatch)
    merchant = httpx.MockTransport(lambda request: four02(str(request.url)))
    get_through(scheme, merchant, "https://shop.example/pay")
    (kept,) = scheme.kept.values()
    header = json.loads(base64.b64decode(kept.payment.payload))
    stranger = dict(header, payload={"authorization": {"nonce": "0x01"}, "signature": "0x"})
    reached: list[httpx.Request] = []

    def other(request: httpx.Request) -> httpx.Response:
        reached.append(request)
        return httpx.Response(200)

    transport = scheme.transport(httpx.MockTransport(other))
    request = httpx.Request(
        "GET",
        "https://other.example/",
        headers={
            "payment-signature": base64.b64encode(json.dumps(stranger).encode()).decode(),
            "x-payment": kept.payment.payload,
        },
    )
    with pytest.raises(Invalid, match="goes only to the URL that asked"):
        asyncio.run(transport.handle_async_request(request))
    assert reached == []
