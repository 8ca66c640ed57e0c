"""x402 from Python against the devnet (`chaperone up` runs x402-rs's facilitator): the purchase
the Rust end-to-end test makes from `examples/paid_api.rs`, through httpx with Chaperone's
transports (sync and asyncio), settled by the facilitator, checked on chain and bound to the
call's record; prices the policy denies, answered by a local server that records every header
it receives, so the test sees that no payment reached it; a refused payment kept and presented
again; a paid request's redirect not followed; and the official `x402` package's client paying
through Chaperone's scheme."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

import chaperone
from chaperone import Recorder, Wallet, X402Client, X402Payment
from chaperone.x402 import AsyncX402Transport, ChaperoneExactEvmScheme, X402Transport, payment_of
from conftest import REPO, Running, chaperone_binary, free_port, status_of

PRICE = 10_000  # 0.01 of the 6-decimal demo token, the paid API's price
MERCHANT = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"  # the paid API's payee
PAYMENT_HEADERS = ("payment-signature", "x-payment")


@pytest.fixture(scope="module")
def wallet(devnet: Running) -> Wallet:
    info = devnet.info
    return Wallet(info.server_url, info.rpc_url, info.wallet, info.agent_key)


@dataclass
class PaidApi:
    """`examples/paid_api.rs` (x402-rs's axum paywall) on a free port."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/weather"

    def stats(self) -> tuple[int, int]:
        """(requests that arrived with a payment header, requests served)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=10) as r:
            stats = json.loads(r.read())
        return stats["payment_headers"], stats["served"]


@pytest.fixture
def paid_api(devnet: Running) -> Iterator[Callable[..., PaidApi]]:
    example = chaperone_binary().parent / "examples" / "paid_api"
    if not example.exists():
        pytest.fail(f"{example} is missing: `cargo build -p chaperone-cli --examples`")
    started: list[PaidApi] = []

    def start(*args: str) -> PaidApi:
        port = free_port()
        process = subprocess.Popen(
            [example, "--devnet", devnet.dir / "devnet.json", "--port", str(port), *args],
            stdout=subprocess.DEVNULL,
        )
        api = PaidApi(process, port)
        started.append(api)
        for _ in range(100):
            try:
                api.stats()
                return api
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"the paid API did not answer on {port} within 10 s")

    yield start
    for api in started:
        api.process.kill()
        api.process.wait()


@dataclass
class Merchant:
    """A local x402 merchant that asks `accepts` of every request (`/redirect` first sends the
    client to `/pay`; a request carrying a payment is answered with `paid_status` and a
    `Location` of `paid_location`) and records every request's path and headers."""

    accepts: list[dict[str, Any]]
    paid_status: int = 402
    paid_location: str = ""
    # A paid request's answer: 200 with a body that stalls after a few bytes, until released.
    stall_paid: bool = False
    released: threading.Event = field(default_factory=threading.Event)
    # Called with a paid request's payment header before it is answered (a merchant settling).
    on_payment: Callable[[str], None] | None = None
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/pay"

    def payment_headers(self) -> list[str]:
        return [h[n] for _, h in self.seen for n in PAYMENT_HEADERS if n in h]


@contextmanager
def merchant(accepts: list[dict[str, Any]], **options: Any) -> Iterator[Merchant]:
    shop = Merchant(accepts, **options)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            shop.seen.append((self.path, headers))
            if self.path == "/redirect":
                self.send_response(307)
                self.send_header("Location", "/pay")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            paid = any(name in headers for name in PAYMENT_HEADERS)
            if paid and shop.on_payment is not None:
                shop.on_payment(next(headers[n] for n in PAYMENT_HEADERS if n in headers))
            if paid and shop.stall_paid:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "100000")
                self.end_headers()
                self.wfile.write(b'{"forecast":')
                self.wfile.flush()
                shop.released.wait(30)
                return
            if paid and shop.paid_status != 402:
                self.send_response(shop.paid_status)
                self.send_header("Location", shop.paid_location)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            required = {
                "x402Version": 2,
                "error": "payment refused" if paid else "payment required",
                "resource": {"url": shop.url, "description": "a test resource"},
                "accepts": shop.accepts,
            }
            body = json.dumps({}).encode()
            self.send_response(402)
            self.send_header(
                "Payment-Required", base64.b64encode(json.dumps(required).encode()).decode()
            )
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    shop.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield shop
    finally:
        shop.released.set()
        server.shutdown()
        server.server_close()


def requirement(devnet: Running, amount: int, pay_to: str = MERCHANT) -> dict[str, Any]:
    """An x402 v2 "exact" EIP-3009 requirement for the demo token."""
    return {
        "scheme": "exact",
        "network": f"eip155:{devnet.info.chain_id}",
        "amount": str(amount),
        "asset": devnet.info.token,
        "payTo": pay_to,
        "maxTimeoutSeconds": 60,
        "extra": {"name": "Test Token", "version": "1"},
    }


@contextmanager
def token_cap(devnet: Running, cap: int) -> Iterator[None]:
    """The demo policy with a lower per-payment cap for the demo token, restored after."""
    wallet = devnet.info.wallet
    path = f"/v1/admin/wallets/{wallet}/policy"
    original = devnet.admin("GET", path)
    capped = json.loads(json.dumps(original))
    capped["version"] = original["version"] + 1
    limits = [
        limit
        for limit in capped["limits"]
        if str(limit["token"]).lower() == devnet.info.token.lower()
    ]
    assert limits, f"the demo policy has a limit for the demo token: {original}"
    limits[0]["per_transaction"] = str(cap)
    devnet.admin("PUT", path, capped)
    try:
        yield
    finally:
        devnet.admin("PUT", path, {**original, "version": original["version"] + 2})


def decision(devnet: Running, request_id: str) -> dict[str, Any]:
    decisions = devnet.admin("GET", "/v1/decisions?limit=1000")
    found = [d for d in decisions["items"] if d["request_id"] == request_id]
    assert found, f"no decision {request_id}"
    return dict(found[0])


def replay(url: str, payment: X402Payment) -> int:
    """The same payment header sent again by hand: the status."""
    return status_of(urllib.request.Request(url, headers={payment.header_name: payment.payload}))


def test_a_python_agent_buys_from_the_paid_api_and_binds_the_payment_to_its_call(
    devnet: Running, wallet: Wallet, paid_api: Callable[..., PaidApi]
) -> None:
    info = devnet.info
    api = paid_api("--method", "eip3009")
    with httpx.Client(transport=chaperone.X402Transport(wallet)) as http:
        response = http.get(api.url)
    assert response.status_code == 200, response.text
    assert response.json()["city"] == "Lisbon"
    payment = payment_of(response)
    assert payment is not None
    assert (payment.method, payment.amount, payment.x402_version) == ("eip3009", PRICE, 2)
    assert (payment.resource, payment.pay_to, payment.asset) == (api.url, MERCHANT, info.token)
    assert payment.network == f"eip155:{info.chain_id}"
    settlement = payment.settlement
    assert settlement is not None and settlement.success, settlement
    assert settlement.payer == info.wallet
    assert settlement.transaction is not None
    assert api.stats() == (1, 1)

    # Settled on chain: that transaction used this very authorization, from the agent's wallet.
    settled = payment.verify_settlement(info.rpc_url, info.agent)
    assert settled.transaction == settlement.transaction
    assert (settled.payer, settled.agent, settled.cosigner) == (
        info.wallet,
        info.agent,
        info.cosigner,
    )

    # The same header again: the token has marked its nonce used, the merchant asks again.
    assert replay(api.url, payment) == 402
    assert api.stats() == (2, 1), "served once"

    # The call's record commits to the payment, and the decision names the call.
    with Recorder(info.server_url, devnet.demo_outbox, info.agent_key) as recorder:
        metadata = X402Payment.record_metadata([payment])
        recorded = recorder.record("demo-model", "Buy the forecast", response.text, metadata)
        recorder.receipt(recorded)
    wallet.bind_to_call(payment.request_id, recorded.leaf_hash)
    bound = decision(devnet, payment.request_id)
    assert bound["outcome"] == "approved"
    assert bound["call_leaf_hash"] == recorded.leaf_hash
    assert X402Payment.from_metadata(metadata) == [payment]
    assert X402Payment.from_json(payment.to_json()) == payment


def test_an_asyncio_agent_buys_with_permit2_and_binds_it(
    devnet: Running, wallet: Wallet, paid_api: Callable[..., PaidApi]
) -> None:
    info = devnet.info
    api = paid_api("--method", "permit2")

    async def buy() -> tuple[httpx.Response, str]:
        async with httpx.AsyncClient(transport=AsyncX402Transport(wallet)) as http:
            response = await http.get(api.url)
        payment = payment_of(response)
        assert payment is not None
        recorder = await Recorder.open_async(info.server_url, devnet.demo_outbox, info.agent_key)
        async with recorder:
            metadata = X402Payment.record_metadata([payment])
            recorded = await recorder.record_async("demo-model", "Buy it", "bought", metadata)
            await recorder.receipt_async(recorded)
        await wallet.bind_to_call_async(payment.request_id, recorded.leaf_hash)
        settled = await payment.verify_settlement_async(info.rpc_url, info.agent)
        assert settled.payer == info.wallet
        return response, recorded.leaf_hash

    response, leaf_hash = asyncio.run(buy())
    assert response.status_code == 200, response.text
    payment = payment_of(response)
    assert payment is not None and payment.method == "permit2"
    assert payment.settlement is not None and payment.settlement.success
    assert api.stats() == (1, 1)
    assert decision(devnet, payment.request_id)["call_leaf_hash"] == leaf_hash


def test_a_price_over_the_cap_is_denied_before_the_merchant_sees_a_payment(
    devnet: Running, wallet: Wallet
) -> None:
    cap = 50 * 10**6
    # Two requirements, both over the cap: every reason comes back, nothing is sent.
    accepts = [requirement(devnet, 60 * 10**6), requirement(devnet, 70 * 10**6)]
    with merchant(accepts) as shop, token_cap(devnet, cap):
        with httpx.Client(transport=X402Transport(wallet)) as http:
            with pytest.raises(chaperone.Denied) as denied:
                http.get(shop.url)

        async def buy() -> None:
            async with httpx.AsyncClient(transport=AsyncX402Transport(wallet)) as http:
                await http.get(shop.url)

        with pytest.raises(chaperone.Denied) as denied_async:
            asyncio.run(buy())
        assert len(shop.seen) == 2, "one request each, none with a payment"
        assert shop.payment_headers() == []
    caps = [r for r in denied.value.reasons if r.code == "per_transaction_cap"]
    assert [(r.amount, r.cap) for r in caps] == [(60 * 10**6, cap), (70 * 10**6, cap)]
    assert [r.code for r in denied_async.value.reasons] == [r.code for r in denied.value.reasons]
    assert "over the per-payment cap" in caps[0].text
    assert denied.value.request_id.startswith("0x")


def test_a_payee_the_policy_denies_and_a_price_the_wallet_could_never_pay(
    devnet: Running, wallet: Wallet
) -> None:
    client = X402Client(wallet)
    dead = "0x000000000000000000000000000000000000dEaD"
    with merchant([requirement(devnet, PRICE, pay_to=dead)]) as shop:
        with pytest.raises(chaperone.Denied) as denied:
            client.get(shop.url)
        assert shop.payment_headers() == []
    assert denied.value.reasons, "the reasons say why"
    # Above what one authorization of the wallet may move (100 of the token): refused before
    # any decision, as in the Rust end-to-end test.
    with merchant([requirement(devnet, 200 * 10**6)]) as shop:
        with pytest.raises(chaperone.Refused) as refused:
            client.get(shop.url)
        assert shop.payment_headers() == []
    assert refused.value.code == "over_max_value"


def test_a_refused_payment_is_kept_and_presented_again(devnet: Running, wallet: Wallet) -> None:
    client = X402Client(wallet)
    with merchant([requirement(devnet, PRICE)]) as shop:
        with pytest.raises(chaperone.PaymentRefused) as refused:
            client.get(shop.url)
        payment = refused.value.payment
        assert refused.value.reason == "payment refused"
        assert payment.request_id == refused.value.request_id
        assert client.outstanding() == [payment]
        # A retry of the same request presents the same authorization, not a second one.
        with pytest.raises(chaperone.PaymentRefused) as again:
            client.get(shop.url)
        assert again.value.payment.request_id == payment.request_id
        assert shop.payment_headers() == [payment.payload, payment.payload]
        assert client.release(payment.request_id) == payment
        assert client.outstanding() == []


def test_red_team_a_paid_200_whose_body_stalls_is_not_paid_again_by_a_request_sent_meanwhile(
    devnet: Running, wallet: Wallet
) -> None:
    """Issue 31's third review: the SDK's `send_read` forgot a payment on its 200's status and
    released the request's lock before reading the body, so an identical request sent while the
    body stalled signed a second payment (`X402Transport` and `X402Client.get` use it)."""
    client = X402Client(wallet)
    answers: list[BaseException | object] = []

    def get() -> None:
        try:
            answers.append(client.get(shop.url, timeout=3))
        except Exception as e:  # noqa: BLE001 - the outcome is asserted below
            answers.append(e)

    with merchant([requirement(devnet, PRICE)], stall_paid=True) as shop:
        first = threading.Thread(target=get)
        first.start()
        deadline = time.monotonic() + 30
        while not shop.payment_headers():
            assert time.monotonic() < deadline, "no payment arrived"
            time.sleep(0.05)
        time.sleep(0.3)
        get()
        first.join()
        sent = shop.payment_headers()
    assert len(answers) == 2
    assert all(isinstance(a, chaperone.PaymentUnanswered) for a in answers), answers
    assert len(set(sent)) == 1, f"one request, nothing served: one authorization ({len(sent)} sent)"
    assert len(client.outstanding()) == 1, "the unserved payment stays kept"


def test_a_paid_request_redirected_elsewhere_is_not_followed(
    devnet: Running, wallet: Wallet
) -> None:
    with merchant([]) as elsewhere:
        with merchant(
            [requirement(devnet, PRICE)], paid_status=302, paid_location=elsewhere.url
        ) as shop:
            transport = X402Transport(wallet)
            with httpx.Client(transport=transport) as http:
                # The unpaid request's redirect is followed (same origin), the paid one's not.
                response = http.get(f"http://127.0.0.1:{shop.port}/redirect")
            assert response.status_code == 302
            assert response.headers["location"] == elsewhere.url
            payment = payment_of(response)
            assert payment is not None and payment.resource == shop.url
            assert [path for path, _ in shop.seen] == ["/redirect", "/pay", "/pay"]
            assert shop.payment_headers() == [payment.payload]
            assert transport.client.release(payment.request_id) == payment
    assert elsewhere.seen == [], "the payment went nowhere else"


def scheme_get(devnet: Running, scheme: ChaperoneExactEvmScheme) -> Callable[[str], httpx.Response]:
    """GET through the x402 package's client paying with `scheme`, its transport under x402's."""
    from x402 import x402Client
    from x402.http.clients.httpx import x402_httpx_transport

    client = x402Client()
    client.register(f"eip155:{devnet.info.chain_id}", scheme)
    # x402's own spend controls allow only its list of known tokens; the policy is the limit.
    client.set_spend_controls(False)

    async def get(url: str) -> httpx.Response:
        transport = x402_httpx_transport(client, transport=scheme.transport())
        # A merchant settles before it answers: on a busy machine past httpx's 5 s default.
        async with httpx.AsyncClient(transport=transport, timeout=60) as http:
            return await http.get(url)

    return lambda url: asyncio.run(get(url))


def authorizations(headers: list[str]) -> set[str]:
    """The distinct authorizations (the header's `payload`) among payment headers."""
    return {
        json.dumps(json.loads(base64.b64decode(h))["payload"], sort_keys=True) for h in headers
    }


def test_the_x402_packages_client_pays_through_chaperones_scheme(
    devnet: Running, wallet: Wallet, paid_api: Callable[..., PaidApi]
) -> None:
    from x402.http.clients.httpx import PaymentError

    info = devnet.info
    api = paid_api("--method", "eip3009")
    scheme = ChaperoneExactEvmScheme(wallet)
    get = scheme_get(devnet, scheme)
    response = get(api.url)
    assert response.status_code == 200, response.text
    assert api.stats() == (1, 1)
    [payment] = scheme.payments
    assert payment.resource == api.url
    settled = payment.find_settlement(info.rpc_url, info.agent)
    assert settled is not None and settled.payer == info.wallet
    # Served (its body read to the end) and settled: the scheme will not present it again, and
    # the next purchase of the request is a new one. (Not bought here: the demo wallet's ten
    # EIP-3009 slots a day are shared by this module.)
    [kept] = scheme.kept.values()
    assert kept.payment.request_id == payment.request_id and scheme._served(kept)

    # A denial raises x402's PaymentError, with Chaperone's Denied (and its reasons) as cause.
    dead = "0x000000000000000000000000000000000000dEaD"
    with merchant([requirement(devnet, PRICE, pay_to=dead)]) as shop:
        with pytest.raises(PaymentError) as failed:
            get(shop.url)
        assert shop.payment_headers() == []
    assert isinstance(failed.value.__cause__, chaperone.Denied)
    assert failed.value.__cause__.reasons


def test_red_team_the_x402_packages_scheme_presents_its_kept_payment_to_a_merchant_that_keeps_refusing(
    devnet: Running, wallet: Wallet
) -> None:
    """Issue 31's fourth review: the scheme signed a new authorization on every retry (and on
    x402's "recovery"), so a merchant answering 402 to each payment took one of the wallet's
    slots for the period per retry. The scheme keeps the payment by the request it was for."""
    scheme = ChaperoneExactEvmScheme(wallet)
    get = scheme_get(devnet, scheme)
    with merchant([requirement(devnet, PRICE)]) as shop:
        for _ in range(3):
            assert get(shop.url).status_code == 402
        sent = shop.payment_headers()
    # (The demo wallet has ten EIP-3009 slots a day, shared by this module: the scheme keeping a
    # payment by request's method and body is in crates/js/test/redteam-x402-book.test.mjs.)
    assert len(sent) == 3
    assert len(authorizations(sent)) == 1, f"one request: one authorization ({len(sent)} sent)"
    assert len(scheme.payments) == 1 and len(scheme.kept) == 1


def settle_with_cast(devnet: Running, header: str) -> None:
    """Settles an EIP-3009 payment header on the devnet as any holder of it can (Anvil's dev
    account 7 pays the gas: account 0 is the devnet's facilitator, whose cached nonce a
    transaction of its key sent behind its back would break)."""
    cast = REPO / "node_modules/.bin/cast"
    if not cast.exists():
        pytest.fail(f"{cast} is missing: `npm ci` at the repository's root installs Foundry")
    payload = json.loads(base64.b64decode(header))["payload"]
    a = payload["authorization"]
    subprocess.run(
        [
            cast, "send", devnet.info.token,
            "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)",
            a["from"], a["to"], str(a["value"]), str(a["validAfter"]), str(a["validBefore"]),
            a["nonce"], payload["signature"],
            "--private-key", "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
            "--rpc-url", devnet.info.rpc_url,
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip


def test_red_team_a_settled_payment_the_merchant_did_not_serve_is_not_paid_again_by_the_scheme(
    devnet: Running, wallet: Wallet
) -> None:
    """Issue 31's fourth review: a merchant that settles each payment and answers 402 was paid
    again on every retry through the x402 package's client. The chain shows the kept payment
    used for a request not served: the scheme raises PaymentRefused carrying it."""
    from x402.http.clients.httpx import PaymentError

    settled: list[str] = []

    def settle(header: str) -> None:
        if header not in settled:
            settle_with_cast(devnet, header)
            settled.append(header)

    scheme = ChaperoneExactEvmScheme(wallet)
    get = scheme_get(devnet, scheme)
    with merchant([requirement(devnet, PRICE)], on_payment=settle) as shop:
        assert get(shop.url).status_code == 402
        with pytest.raises(PaymentError) as failed:
            get(shop.url)
        sent = shop.payment_headers()
    refused = failed.value.__cause__
    assert isinstance(refused, chaperone.PaymentRefused), repr(refused)
    [payment] = scheme.payments
    assert refused.payment.request_id == payment.request_id
    assert len(sent) == 1 and len(settled) == 1, "one authorization, settled once, not paid again"


def test_the_readmes_python_x402_example_buys_and_binds(
    devnet: Running, paid_api: Callable[..., PaidApi], tmp_path: Path
) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.DOTALL)
    example = [b for b in blocks if "X402Transport" in b]
    assert example, "README.md shows a Python agent paying an x402 API"
    api = paid_api("--method", "eip3009")
    project = tmp_path / "project"
    project.mkdir()
    (project / ".chaperone").symlink_to(devnet.dir)
    script = project / "example.py"
    script.write_text(example[0].replace("http://127.0.0.1:8403/weather", api.url))
    done = subprocess.run([sys.executable, script.name], cwd=project, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Lisbon" in done.stdout and "0x" in done.stdout, done.stdout
    assert api.stats() == (1, 1)


def test_red_team_the_x402_packages_scheme_without_the_url_that_asked_co_signs_nothing(
    devnet: Running, wallet: Wallet
) -> None:
    """Issue 31's second review: the scheme co-signed with an empty resource (its default), so
    the payment record named no URL; the Node scheme refuses, and so does this one."""
    from x402 import x402Client
    from x402.http.clients.httpx import PaymentError, x402_httpx_transport

    scheme = ChaperoneExactEvmScheme(wallet)
    client = x402Client()
    client.register(f"eip155:{devnet.info.chain_id}", scheme)
    client.set_spend_controls(False)

    async def get(url: str) -> httpx.Response:
        async with httpx.AsyncClient(transport=x402_httpx_transport(client)) as http:
            return await http.get(url)

    with merchant([requirement(devnet, PRICE)]) as shop:
        with pytest.raises(PaymentError) as failed:
            asyncio.run(get(shop.url))
        assert shop.payment_headers() == [], "no payment sent"
    assert isinstance(failed.value.__cause__, chaperone.Invalid), repr(failed.value.__cause__)
    assert "does not know the request that asked" in str(failed.value.__cause__)
    assert scheme.payments == [], "nothing co-signed"


@contextmanager
def silent_merchant() -> Iterator[str]:
    """A server that accepts connections and never answers: its URL."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/pay"
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        listener.close()


def test_red_team_x402_clients_default_timeout_cuts_off_a_merchant_that_never_answers(
    wallet: Wallet,
) -> None:
    """Issue 31's second review: ``X402Client.get`` had no bound unless the call named one, so
    a merchant that never answers held the agent forever. The client's default (300 s) bounds
    every exchange; here set to half a second."""
    with silent_merchant() as url:
        started = time.monotonic()
        with pytest.raises(chaperone.Unreachable):
            X402Client(wallet, timeout=0.5).get(url)
        assert time.monotonic() - started < 10
        # A call names its own bound.
        started = time.monotonic()
        with pytest.raises(chaperone.Unreachable):
            X402Client(wallet).get(url, timeout=0.5)
        assert time.monotonic() - started < 10
