"""The wallet from Python against the devnet's policy (written by `chaperone up`): a payment
within it, one over its cap (every reason readable), one a human approves, and an EIP-3009
authorization. One `Wallet` for the module: the agent's nonces are its to hand out."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

import chaperone
from chaperone import Wallet
from conftest import Running

VENDOR = "0x4242424242424242424242424242424242424242"
ETH = 10**18


@pytest.fixture(scope="module")
def wallet(devnet: Running) -> Iterator[Wallet]:
    info = devnet.info
    yield Wallet(info.server_url, info.rpc_url, info.wallet, info.agent_key, approval_poll=0.2)


def test_a_payment_within_the_policy_executes(wallet: Wallet, devnet: Running) -> None:
    executed = wallet.pay(VENDOR, ETH // 100)
    assert executed.tx_hash.startswith("0x") and len(executed.tx_hash) == 66
    assert executed.block_number > 0
    assert executed.gas_used > 21_000
    assert wallet.address == devnet.info.wallet
    assert wallet.chain_id == devnet.info.chain_id


def test_a_token_payment_and_a_batch_of_calls_execute(wallet: Wallet, devnet: Running) -> None:
    token = devnet.info.token
    paid = wallet.pay(VENDOR, 5_000_000, token=token)
    assert paid.block_number > 0
    # Two native transfers in one transaction: the calls as (to, value, data).
    both = wallet.execute([(VENDOR, ETH // 1_000, b""), (VENDOR, ETH // 1_000, "0x")])
    assert both.block_number >= paid.block_number
    assert both.request_id != paid.request_id


def test_a_payment_over_the_cap_is_denied_with_its_reasons(wallet: Wallet) -> None:
    with pytest.raises(chaperone.Denied) as denied:
        wallet.pay(VENDOR, ETH // 2)
    reasons = {r.code: r for r in denied.value.reasons}
    assert "per_transaction_cap" in reasons, "every violated rule is listed"
    cap = reasons["per_transaction_cap"]
    assert cap.amount == ETH // 2 and isinstance(cap.amount, int)
    assert cap.cap == ETH // 10
    assert cap.token == "native"
    assert denied.value.request_id.startswith("0x")
    assert cap.text == "0.5 ETH is over the per-payment cap of 0.1 ETH"
    assert "0.5 ETH is over the per-payment cap of 0.1 ETH" in str(denied.value)
    assert '"cap":"0x16345785d8a0000"' in cap.to_json(), "the exact values stay beside"
    with pytest.raises(AttributeError, match="no field"):
        _ = cap.threshold


def test_a_payment_above_the_threshold_waits_for_a_human(
    wallet: Wallet, devnet: Running
) -> None:
    with pytest.raises(chaperone.Pending) as pending:
        wallet.pay(VENDOR, 7 * ETH // 100)
    request_id = pending.value.request_id
    assert pending.value.pending.request_id == request_id
    waiting = devnet.admin("GET", "/v1/admin/approvals")
    assert request_id in str(waiting), "the approver sees the request"

    def approve() -> None:
        time.sleep(0.5)
        devnet.admin("POST", f"/v1/admin/approvals/{request_id}/approve", {})

    approver = threading.Thread(target=approve)
    approver.start()
    executed = wallet.wait_for_approval(pending.value.pending, timeout=60)
    approver.join()
    assert executed.request_id == request_id
    assert executed.block_number > 0


def test_a_denied_approval_raises_denied(wallet: Wallet, devnet: Running) -> None:
    with pytest.raises(chaperone.Pending) as pending:
        wallet.pay(VENDOR, 6 * ETH // 100)
    devnet.admin("POST", f"/v1/admin/approvals/{pending.value.request_id}/deny", {})
    with pytest.raises(chaperone.Denied):
        wallet.wait_for_approval(pending.value.pending, timeout=30)


def test_an_eip3009_authorization_is_co_signed(wallet: Wallet, devnet: Running) -> None:
    token = devnet.info.token
    signed = wallet.sign_payment_authorization(
        token, VENDOR, 10_000_000, name="Test Token", version="1", valid_for=300
    )
    assert signed.message["from"] == wallet.address
    assert signed.message["value"] == 10_000_000
    assert signed.domain["verifying_contract"] == token
    # agent (65) + co-signer (65) + the ABI-encoded authorization
    assert len(bytes.fromhex(signed.signature[2:])) > 130
    # Above what one authorization of the wallet may move: refused before any decision.
    with pytest.raises(chaperone.Refused) as over:
        wallet.sign_payment_authorization(
            token, VENDOR, 101_000_000, name="Test Token", version="1"
        )
    assert (over.value.status, over.value.code) == (422, "over_max_value")


def test_bad_arguments_raise_before_anything_is_sent(wallet: Wallet) -> None:
    with pytest.raises(ValueError, match="not an address"):
        wallet.pay("0x42", 1)
    with pytest.raises(ValueError, match="checksum"):
        wallet.pay("0x4242424242424242424242424242424242424242".replace("42", "Ab", 1), 1)
    with pytest.raises(ValueError, match="between 0 and 2"):
        wallet.pay(VENDOR, -1)
    with pytest.raises(TypeError, match="must be an int"):
        wallet.pay(VENDOR, 1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="tuple"):
        wallet.execute(["not a call"])  # type: ignore[list-item]
