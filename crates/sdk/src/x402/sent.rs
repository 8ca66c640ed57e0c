//! Payments the client has sent and no merchant has yet answered with the resource, by the
//! request they were for. A merchant that answers a payment with another 402 (or not at all)
//! may still hold a valid authorization and settle it later; so the client never signs a
//! second payment for the same request while the first can still be used. A retry presents
//! the same authorization again (settled at most once, whatever the merchant does with it).
//!
//! The book lives in memory, shared by the clones of one `X402Client`: a process that
//! restarts has only what the application kept of each `Error::PaymentRefused` or
//! `Error::PaymentUnanswered` (both carry the payment).

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

use alloy::primitives::{B256, keccak256};

use super::X402Payment;

/// The identity of a request as the application sent it: method, URL and body.
pub(super) fn request_key(request: &reqwest::Request) -> B256 {
    let body = request
        .body()
        .and_then(reqwest::Body::as_bytes)
        .unwrap_or_default();
    // Length-prefixed, so no two requests share an encoding.
    let mut encoded = Vec::new();
    for part in [
        request.method().as_str().as_bytes(),
        request.url().as_str().as_bytes(),
        body,
    ] {
        encoded.extend_from_slice(&(part.len() as u64).to_be_bytes());
        encoded.extend_from_slice(part);
    }
    keccak256(encoded)
}

/// Payments sent and not answered with the resource, by request.
#[derive(Debug, Default)]
pub(super) struct SentPayments(Mutex<HashMap<B256, X402Payment>>);

impl SentPayments {
    /// The payment sent for `request`, if one is outstanding.
    pub(super) fn for_request(&self, request: B256) -> Option<X402Payment> {
        self.book().get(&request).cloned()
    }

    /// Remembers `payment`, about to be sent for `request`. A different payment already kept
    /// for it stays: it may have been sent (and settled), and is the one a retry presents.
    pub(super) fn keep(&self, request: B256, payment: X402Payment) {
        self.book().entry(request).or_insert(payment);
    }

    /// Forgets the payment of decision `request_id` kept for `request`: answered with the
    /// resource, or never usable again (another payment kept for it stays).
    pub(super) fn done(&self, request: B256, request_id: B256) {
        let mut book = self.book();
        if book
            .get(&request)
            .is_some_and(|p| p.request_id == request_id)
        {
            book.remove(&request);
        }
    }

    /// Forgets the payment of co-sign decision `request_id`, returning it.
    pub(super) fn release(&self, request_id: B256) -> Option<X402Payment> {
        let mut book = self.book();
        let key = book
            .iter()
            .find(|(_, p)| p.request_id == request_id)
            .map(|(key, _)| *key)?;
        book.remove(&key)
    }

    /// Every outstanding payment.
    pub(super) fn all(&self) -> Vec<X402Payment> {
        self.book().values().cloned().collect()
    }

    fn book(&self) -> std::sync::MutexGuard<'_, HashMap<B256, X402Payment>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
