//! The facilitator: decodes a payment header and settles it on chain as a facilitator would
//! (EIP-3009 through the token, Permit2 through the x402 proxy, an ERC-6492 wallet deployed
//! first in a Multicall3 batch).

use alloy::{
    providers::{DynProvider, Provider},
    rpc::types::TransactionRequest,
    sol_types::{SolCall, SolValue},
};
use chaperone_chain::{MULTICALL3, Multicall3, TestToken, X402ExactPermit2Proxy, x402_proxy};
use chaperone_core::{Address, B256, Bytes, U256, X402_PERMIT2_PROXY};
use serde_json::Value;
use x402_types::util::Base64Bytes;

/// The payment header's JSON.
pub(super) fn decode_header(header: &str) -> Value {
    let bytes = Base64Bytes::from(header.as_bytes()).decode().unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

pub(super) fn payer_of(header: &str) -> Value {
    let payload = &decode_header(header)["payload"];
    let eip3009 = &payload["authorization"]["from"];
    if eip3009.is_null() {
        payload["permit2Authorization"]["from"].clone()
    } else {
        eip3009.clone()
    }
}

/// A JSON number, or a decimal or 0x-hex string, as a U256.
fn u256(value: &Value) -> U256 {
    match value {
        Value::Number(n) => U256::from(n.as_u64().unwrap()),
        Value::String(s) if s.starts_with("0x") => s.parse().unwrap(),
        Value::String(s) => U256::from_str_radix(s, 10).unwrap(),
        other => panic!("not a number: {other}"),
    }
}

fn address(value: &Value) -> Address {
    value.as_str().unwrap().parse().unwrap()
}

/// The calls a facilitator makes to settle a payment header: EIP-3009 through the token,
/// Permit2 through the x402 proxy; first the factory call of an ERC-6492 signature (which
/// deploys the wallet), and then the wallet's own signature.
pub(super) fn settlement_calls(token: Address, header: &str) -> Vec<(Address, Bytes)> {
    let payload = &decode_header(header)["payload"];
    let signature: Bytes = payload["signature"].as_str().unwrap().parse().unwrap();
    let mut calls = Vec::new();
    let signature = match signature.strip_suffix(&[0x64, 0x92].repeat(16)[..]) {
        Some(wrapped) => {
            let (factory, deploy, inner) =
                <(Address, Bytes, Bytes)>::abi_decode_params(wrapped).unwrap();
            calls.push((factory, deploy));
            inner
        }
        None => signature,
    };
    if let Some(a) = payload.get("authorization") {
        let call = TestToken::transferWithAuthorizationCall {
            from: address(&a["from"]),
            to: address(&a["to"]),
            value: u256(&a["value"]),
            validAfter: u256(&a["validAfter"]),
            validBefore: u256(&a["validBefore"]),
            nonce: B256::from(u256(&a["nonce"])),
            signature,
        };
        calls.push((token, call.abi_encode().into()));
        return calls;
    }
    let p = &payload["permit2Authorization"];
    let call = X402ExactPermit2Proxy::settleCall {
        permit: x402_proxy::Permit2::PermitTransferFrom {
            permitted: x402_proxy::Permit2::TokenPermissions {
                token: address(&p["permitted"]["token"]),
                amount: u256(&p["permitted"]["amount"]),
            },
            nonce: u256(&p["nonce"]),
            deadline: u256(&p["deadline"]),
        },
        owner: address(&p["from"]),
        witness: x402_proxy::X402ExactPermit2Proxy::Witness {
            to: address(&p["witness"]["to"]),
            validAfter: u256(&p["witness"]["validAfter"]),
        },
        signature,
    };
    calls.push((X402_PERMIT2_PROXY, call.abi_encode().into()));
    calls
}

/// Settles a payment header as a facilitator would. Returns the transaction.
pub(super) async fn settle_on_chain(
    facilitator: &DynProvider,
    token: Address,
    header: &str,
) -> Result<B256, String> {
    let calls = settlement_calls(token, header);
    match &calls[..] {
        [(to, input)] => send(facilitator, *to, input.clone()).await,
        _ => send(facilitator, MULTICALL3, batch(calls, false)).await,
    }
}

/// A Multicall3 `aggregate3` of `calls`, each allowed to fail or not.
pub(super) fn batch(calls: Vec<(Address, Bytes)>, allow_failure: bool) -> Bytes {
    let calls = calls
        .into_iter()
        .map(|(target, call_data)| Multicall3::Call3 {
            target,
            allowFailure: allow_failure,
            callData: call_data,
        })
        .collect();
    Multicall3::aggregate3Call { calls }.abi_encode().into()
}

/// Sends `input` to `to`; the transaction, if it succeeded.
pub(super) async fn send(from: &DynProvider, to: Address, input: Bytes) -> Result<B256, String> {
    // A fixed gas limit: an estimate for a batch that tolerates failures may starve the
    // calls it is meant to make.
    let tx = TransactionRequest::default()
        .to(to)
        .input(input.into())
        .gas_limit(3_000_000);
    let receipt = from
        .send_transaction(tx)
        .await
        .map_err(|e| e.to_string())?
        .get_receipt()
        .await
        .map_err(|e| e.to_string())?;
    if !receipt.status() {
        return Err(format!("{} reverted", receipt.transaction_hash));
    }
    Ok(receipt.transaction_hash)
}
