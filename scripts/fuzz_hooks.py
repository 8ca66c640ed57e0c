"""Schemathesis hooks for scripts/fuzz-api.sh: most generated co-sign requests are signed.

A random `/v1/cosign` body is refused for its shape or its signature long before the policy
decides. So that the fuzzer also reaches the decision path (reservations, approvals, denials),
two generated requests in three are made an `execute` of the registered wallet on the
service's chain (keeping the generated calls, values, data and nonce where they parse), given
a lifetime in the near future, and signed with the wallet's agent key over the same EIP-712
digest the service checks (`chaperone_api::Payment::digest`). The third goes out as generated.
"""

import hashlib
import os
import time

import schemathesis
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import to_checksum_address as Web3Address

AGENT_KEY = os.environ["CHAPERONE_FUZZ_AGENT_KEY"]
WALLET = os.environ["CHAPERONE_FUZZ_WALLET"]
CHAIN_ID = int(os.environ["CHAPERONE_FUZZ_CHAIN_ID"])

EXECUTE_TYPES = {
    "Call": [
        {"name": "to", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "data", "type": "bytes"},
    ],
    "Execute": [
        {"name": "calls", "type": "Call[]"},
        {"name": "nonce", "type": "uint256"},
        {"name": "validUntil", "type": "uint64"},
    ],
}


PAYEE = "0x000000000000000000000000000000000000bEEF"


def _int(value, default=0):
    try:
        return int(value, 0) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        return default


def _bytes(value):
    try:
        return bytes.fromhex(value.removeprefix("0x"))
    except (AttributeError, ValueError):
        return b""


def _address(value):
    ok = isinstance(value, str) and len(value) == 42 and value.startswith("0x")
    try:
        return Web3Address(value) if ok else PAYEE
    except ValueError:
        return PAYEE


def _signable(execute):
    """`execute` made signable: what does not parse as an address, a number or hex is replaced
    (a payee, zero, no data), values stay under the fuzz policy's per-payment cap, and the
    lifetime is two minutes from now. The generated shape (how many calls, which values and
    data, which nonce) is kept."""
    calls = execute.get("calls")
    if not isinstance(calls, list):
        return None
    calls = [c if isinstance(c, dict) else {} for c in calls] or [{}]
    return {
        "calls": [
            {
                "to": _address(c.get("to")),
                "value": _int(c.get("value")) % (10**15),
                "data": _bytes(c.get("data")),
            }
            for c in calls
        ],
        "nonce": _int(execute.get("nonce")) % (2**256),
        "validUntil": int(time.time()) + 120,
    }


@schemathesis.hook
def map_case(ctx, case):
    if case.operation.path != "/v1/cosign" or not isinstance(case.body, dict):
        return case
    # Two cases in three go out signed; the third as generated (malformed shapes, other
    # methods, bad signatures keep being fuzzed). A body without an `execute` lends its hash
    # as the nonce, so each signed request is a new one, not a replay.
    fingerprint = int.from_bytes(hashlib.sha256(repr(case.body).encode()).digest()[:8], "big")
    if fingerprint % 3 == 0:
        return case
    execute = case.body.get("execute")
    if not isinstance(execute, dict):
        execute = {"calls": [], "nonce": fingerprint}
    message = _signable(execute)
    if message is None:
        return case
    typed = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            **EXECUTE_TYPES,
        },
        "primaryType": "Execute",
        "domain": {
            "name": "Chaperone AgentWallet",
            "version": "1",
            "chainId": CHAIN_ID,
            "verifyingContract": WALLET,
        },
        "message": message,
    }
    try:
        signed = Account.sign_message(encode_typed_data(full_message=typed), AGENT_KEY)
    except Exception:  # an address eth_account will not take: send the case unsigned
        return case
    case.body = {
        "chain_id": CHAIN_ID,
        "wallet": WALLET,
        "execute": {
            "calls": [
                {"to": c["to"], "value": hex(c["value"]), "data": "0x" + c["data"].hex()}
                for c in message["calls"]
            ],
            "nonce": hex(message["nonce"]),
            "validUntil": message["validUntil"],
        },
        "agent_signature": "0x" + signed.signature.hex().removeprefix("0x"),
    }
    return case
