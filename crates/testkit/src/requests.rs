//! Requests signed as an agent signs them.

use chaperone_api::{CosignRequest, Payment};
use chaperone_core::{Address, B256, Bytes, Secp256k1Signer};

/// `signer`'s 65-byte signature (r ‖ s ‖ v) over `digest`, as the wire carries it.
pub fn sign(signer: &Secp256k1Signer, digest: &B256) -> Bytes {
    let signature = signer
        .sign_digest(digest)
        .expect("a random key signs any digest");
    Bytes::from(signature.as_bytes().to_vec())
}

/// A co-sign request for `payment` from `wallet` on `chain_id`, signed by `agent` over
/// [`Payment::digest`].
pub fn signed_cosign(
    agent: &Secp256k1Signer,
    chain_id: u64,
    wallet: Address,
    payment: Payment,
) -> CosignRequest {
    let agent_signature = sign(agent, &payment.digest(chain_id, wallet));
    CosignRequest {
        chain_id,
        wallet,
        payment,
        agent_signature,
    }
}

/// [`signed_cosign`] as the JSON body of `POST /v1/cosign`, for a test to send or to spoil.
pub fn signed_cosign_json(
    agent: &Secp256k1Signer,
    chain_id: u64,
    wallet: Address,
    payment: Payment,
) -> serde_json::Value {
    serde_json::to_value(signed_cosign(agent, chain_id, wallet, payment))
        .expect("a co-sign request serialises")
}
