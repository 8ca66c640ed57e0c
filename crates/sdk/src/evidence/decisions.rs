//! A bundle's decisions checked against their own records (already proved included), through
//! the openings the bundle carries: the record must be a decision record signed by the policy
//! service (the wallet's on-chain `cosigner()` at the record's anchoring block, or a key the
//! auditor names), its commitments must open to the request and the decision, and every field
//! the bundle shows must be the opened record's: request id, wallet, time, outcome, reasons,
//! policy, co-signature, and what the request asks (method, what each token pays to whom, the
//! agent who signed it). A contradiction makes the bundle invalid. A decision that cannot be
//! checked (no record, no opening, a version-1 bundle) is unverified: the bundle fails unless
//! the auditor accepts unverified decisions (red team rt29 F1, F2, F9).

use std::collections::{HashMap, HashSet};

use chaperone_api::{
    CosignRequest,
    compliance::DecisionView,
    evidence::{DECISION_RECORD_MODEL, DecisionOpening, DecisionRecordContent, EvidenceBundle},
};
use chaperone_core::{Address, B256, Commitment, CommitmentKind, Record, Signature, recover_low_s};

use super::{UnverifiedDecision, invalid};
use crate::Result;

/// Who may sign a decision record.
#[derive(Debug, Clone, Default)]
pub(crate) struct DecisionSigners {
    /// Keys the auditor named.
    pub(crate) named: Vec<Address>,
    /// Each (wallet, record leaf): the wallet's `cosigner()` at the record's anchoring block.
    pub(crate) on_chain: HashMap<(Address, B256), Address>,
}

impl DecisionSigners {
    fn allow(&self, wallet: Address, leaf: B256, signer: Address) -> bool {
        self.named.contains(&signer) || self.on_chain.get(&(wallet, leaf)) == Some(&signer)
    }
}

/// What the decisions' check found.
#[derive(Debug)]
pub(crate) struct CheckedDecisions {
    pub(crate) verified: usize,
    pub(crate) unverified: Vec<UnverifiedDecision>,
    pub(crate) signers: Vec<Address>,
    /// Verified decisions that name approvers: no decision record commits to them (the
    /// votes are the service's admin-action records, which a bundle does not open).
    pub(crate) approvers_unchecked: Vec<B256>,
}

/// Checks every decision of `bundle` against its record through its opening. Unverified
/// decisions fail the bundle unless `allow_unverified`.
pub(crate) fn check_decisions(
    bundle: &EvidenceBundle,
    signers: &DecisionSigners,
    allow_unverified: bool,
) -> Result<CheckedDecisions> {
    let records: HashMap<B256, Record> = bundle
        .records
        .iter()
        .filter_map(|r| Some((r.leaf_hash, Record::decode(&r.leaf_data).ok()?)))
        .collect();
    // Completeness: one view per decision, and an opening only for a decision shown (an extra
    // opening, or a second view of one decision, is a bundle that was edited).
    let mut shown = HashSet::new();
    for d in &bundle.decisions {
        if !shown.insert(d.request_id) {
            return Err(invalid(format!(
                "decision {} is in the bundle twice",
                d.request_id
            )));
        }
    }
    let mut openings: HashMap<B256, &DecisionOpening> = HashMap::new();
    for o in &bundle.decision_openings {
        if !shown.contains(&o.request_id) || openings.insert(o.request_id, o).is_some() {
            return Err(invalid(format!(
                "the opening of decision {} belongs to no single decision of the bundle",
                o.request_id
            )));
        }
    }
    let mut checked = CheckedDecisions {
        verified: 0,
        unverified: Vec::new(),
        signers: Vec::new(),
        approvers_unchecked: Vec::new(),
    };
    for d in &bundle.decisions {
        let why = match (d.logged_leaf, bundle.version) {
            (_, 1) => Some("a version-1 bundle carries no openings"),
            (None, _) => Some("not yet logged when the bundle was made"),
            (Some(leaf), _) if !records.contains_key(&leaf) => {
                Some("its record is not in the bundle (not yet anchored, or left out)")
            }
            (Some(_), _) if !openings.contains_key(&d.request_id) => {
                Some("the bundle carries no opening of its record")
            }
            _ => None,
        };
        if let Some(reason) = why {
            checked.unverified.push(UnverifiedDecision {
                request_id: d.request_id,
                reason: reason.to_owned(),
            });
            continue;
        }
        let (Some(leaf), Some(opening)) = (d.logged_leaf, openings.get(&d.request_id)) else {
            continue;
        };
        let record = &records[&leaf];
        check_decision(d, record, opening)?;
        if !signers.allow(d.wallet, leaf, record.agent) {
            return Err(invalid(format!(
                "decision {}: its record is signed by {}, neither the wallet's co-signer on chain \
                 when the record was anchored nor a key you named (--decision-signer)",
                d.request_id, record.agent
            )));
        }
        checked.verified += 1;
        if !d.approvers.is_empty() || d.approval_comment.is_some() {
            checked.approvers_unchecked.push(d.request_id);
        }
        if !checked.signers.contains(&record.agent) {
            checked.signers.push(record.agent);
        }
    }
    if !allow_unverified && let Some(u) = checked.unverified.first() {
        return Err(invalid(format!(
            "{} of {} decisions cannot be checked against their records (decision {}: {}); \
             pass --allow-unverified to accept them as the server's word",
            checked.unverified.len(),
            bundle.decisions.len(),
            u.request_id,
            u.reason
        )));
    }
    Ok(checked)
}

/// Fails unless `opening` opens `record` (a decision record) and says what `d` says.
fn check_decision(d: &DecisionView, record: &Record, opening: &DecisionOpening) -> Result<()> {
    let id = d.request_id;
    let wrong = |what: &str| invalid(format!("decision {id}: {what}"));
    if opening.leaf_hash != record.leaf_hash().map_err(|e| wrong(&e.to_string()))? {
        return Err(wrong("its opening is of another record"));
    }
    if record.model != DECISION_RECORD_MODEL {
        return Err(wrong(&format!(
            "its record is a `{}` record, not a decision's",
            record.model
        )));
    }
    let opens = |kind, salt, content: &str, commitment: Commitment| {
        Commitment::compute(kind, salt, content.as_bytes()) == commitment
    };
    if !opens(
        CommitmentKind::Input,
        &opening.input_salt,
        &opening.request,
        record.input,
    ) {
        return Err(wrong(
            "its request does not open its record's input commitment",
        ));
    }
    if !opens(
        CommitmentKind::Output,
        &opening.output_salt,
        &opening.decision,
        record.output,
    ) {
        return Err(wrong(
            "its decision does not open its record's output commitment",
        ));
    }
    let request: CosignRequest = serde_json::from_str(&opening.request)
        .map_err(|e| wrong(&format!("its recorded request does not parse: {e}")))?;
    let content: DecisionRecordContent = serde_json::from_str(&opening.decision)
        .map_err(|e| wrong(&format!("its recorded decision does not parse: {e}")))?;
    let recorded_id = request.payment.digest(request.chain_id, request.wallet);
    // The agent is whoever signed the recorded request (the server checked it was the
    // wallet's agent before deciding).
    let agent = Signature::from_raw(&request.agent_signature)
        .ok()
        .and_then(|s| recover_low_s(&s, &recorded_id).ok());
    // What each token pays to whom, from the recorded request: the bundle's amounts in
    // base units and recipients, when it shows them, must be exactly these, in this order.
    // (The server's bundle leaves method, agent and payments out, the ledger's to show; a
    // bundle that shows them must show the record's.)
    let spends: Vec<_> = request.payment.spends();
    let shown: Vec<_> = d
        .payments
        .iter()
        .map(|p| (p.token, p.amount_base_units.0, p.recipients.clone()))
        .collect();
    let checks = [
        (
            recorded_id == id,
            "its request id is not its recorded request's digest",
        ),
        (request.wallet == d.wallet, "its wallet is not its record's"),
        (
            record.timestamp_ms == d.created_at.saturating_mul(1000),
            "its time is not its record's",
        ),
        (
            content.outcome == d.outcome,
            "its outcome is not its record's",
        ),
        (
            content.reasons == d.reasons,
            "its reasons are not its record's",
        ),
        (
            content.policy_version == d.policy_version && content.policy_hash == d.policy_hash,
            "its policy version or hash is not its record's",
        ),
        (
            content.cosigner_signature.is_some() == d.signed,
            "whether it was co-signed is not what its record says",
        ),
        (
            d.method.is_none_or(|m| m == request.payment.kind()),
            "its payment method is not its recorded request's",
        ),
        (
            (shown.is_empty() || shown == spends) && d.payments_text.len() == d.payments.len(),
            "what it pays (tokens, amounts, recipients) is not what its recorded request asks",
        ),
        (
            d.agent.is_none() || d.agent == agent,
            "its agent is not the signer of its recorded request",
        ),
    ];
    match checks.iter().find(|(ok, _)| !ok) {
        Some((_, what)) => Err(wrong(what)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A named change made to a decision or a bundle.
    type Doctoring<T> = (&'static str, fn(&mut T));

    use chaperone_api::{Payment, evidence::EVIDENCE_VERSION, evidence::EvidenceRecord};
    use chaperone_core::{
        Bytes, Call, Execute, InclusionProof, Salt, Secp256k1Signer, U256, policy::Outcome,
    };

    /// A bundle holding one decision record of `signer` (the policy service's key, or any key
    /// that can log a record: an agent's), opened by the bundle, and a decision that says
    /// exactly what the record does: an `execute` of 1 wei to 0x22…, signed by its agent.
    fn bundle_with_decision(signer: Address) -> EvidenceBundle {
        let wallet = Address::repeat_byte(0x11);
        let payment = Payment::Execute(Execute {
            calls: vec![Call {
                to: Address::repeat_byte(0x22),
                value: U256::from(1),
                data: Bytes::new(),
            }],
            nonce: U256::ZERO,
            validUntil: 2_000_000_000,
        });
        let request_id = payment.digest(1, wallet);
        let agent = Secp256k1Signer::from_bytes(&B256::repeat_byte(0x44)).expect("a key");
        let signature = agent.sign_digest(&request_id).expect("signs");
        let request = CosignRequest {
            chain_id: 1,
            wallet,
            payment,
            agent_signature: Bytes::from(signature.as_bytes().to_vec()),
        };
        let request_json = serde_json::to_string(&request).expect("serialises");
        let content = DecisionRecordContent {
            outcome: Outcome::Approved,
            reasons: vec![],
            policy_version: 1,
            policy_hash: B256::repeat_byte(0x33),
            cosigner_signature: Some("0x00".into()),
        };
        let decision_json = serde_json::to_string(&content).expect("serialises");
        let (input_salt, output_salt) = (Salt([1; 32]), Salt([2; 32]));
        let record = Record {
            agent: signer,
            sequence: 0,
            timestamp_ms: 1_700_000_000_000,
            model: DECISION_RECORD_MODEL.into(),
            input: Commitment::compute(CommitmentKind::Input, &input_salt, request_json.as_bytes()),
            output: Commitment::compute(
                CommitmentKind::Output,
                &output_salt,
                decision_json.as_bytes(),
            ),
            metadata: None,
            previous: B256::ZERO,
        };
        let leaf = record.leaf_hash().expect("a valid record");
        let decision: DecisionView = serde_json::from_value(serde_json::json!({
            "request_id": request_id, "wallet": wallet, "created_at": 1_700_000_000u64,
            "created_at_iso": "2023-11-14T22:13:20Z", "outcome": "approved", "reasons": [],
            "reasons_text": [], "policy_version": 1, "policy_hash": B256::repeat_byte(0x33),
            "signed": true, "logged_leaf": leaf, "call_leaf_hash": null,
            "agent": agent.address(), "method": "execute",
            "payments": [{
                "token": "native", "token_symbol": "ETH", "token_decimals": 18,
                "amount": "0.000000000000000001", "amount_base_units": "1",
                "recipients": [Address::repeat_byte(0x22)], "status": "settled",
                "settlement_tx": null, "settled_at": null,
            }],
            "payments_text": ["0.000000000000000001 ETH to 0x2222222222222222222222222222222222222222"],
            "approvers": [], "approval_comment": null,
        }))
        .expect("a decision view");
        EvidenceBundle {
            version: EVIDENCE_VERSION,
            from: 0,
            to: 2_000_000_000,
            agents: vec![],
            wallets: vec![wallet],
            records: vec![EvidenceRecord {
                index: 0,
                leaf_hash: leaf,
                leaf_data: Bytes::from(record.encode().expect("a valid record")),
                agent: signer,
                model: DECISION_RECORD_MODEL.into(),
                timestamp_ms: record.timestamp_ms,
                received_ms: record.timestamp_ms,
                inclusion: InclusionProof {
                    index: 0,
                    size: 1,
                    path: vec![],
                },
            }],
            unanchored_records: 0,
            checkpoints: vec![],
            consistency: vec![],
            decisions: vec![decision],
            decision_openings: vec![DecisionOpening {
                request_id,
                leaf_hash: leaf,
                request: request_json,
                input_salt,
                decision: decision_json,
                output_salt,
            }],
        }
    }

    /// The policy service's key, and the signers that accept it: the wallet's co-signer on
    /// chain at the record's anchoring block.
    fn service() -> (Address, DecisionSigners) {
        let key = Address::repeat_byte(0xcc);
        let bundle = bundle_with_decision(key);
        let signers = DecisionSigners {
            named: vec![],
            on_chain: HashMap::from([(
                (bundle.decisions[0].wallet, bundle.records[0].leaf_hash),
                key,
            )]),
        };
        (key, signers)
    }

    #[test]
    fn a_decision_that_says_what_its_record_says_verifies() {
        let (key, signers) = service();
        let checked =
            check_decisions(&bundle_with_decision(key), &signers, false).expect("verifies");
        assert_eq!((checked.verified, checked.signers), (1, vec![key]));
        // A key the auditor names is accepted as well.
        let named = DecisionSigners {
            named: vec![key],
            on_chain: HashMap::new(),
        };
        let checked = check_decisions(&bundle_with_decision(key), &named, false).expect("verifies");
        assert_eq!(checked.verified, 1);
        // The server's bundle leaves agent, method and payments to the ledger: not shown,
        // not claimed.
        let mut bare = bundle_with_decision(key);
        let d = &mut bare.decisions[0];
        (d.agent, d.method) = (None, None);
        d.payments.clear();
        d.payments_text.clear();
        assert_eq!(
            check_decisions(&bare, &signers, false)
                .expect("verifies")
                .verified,
            1
        );
    }

    /// Red team (rt29 F1): any key that can log a record could log a decision-model record of
    /// its own making (ingestion now refuses the prefix, but the verifier must not rely on
    /// the server); a doctored bundle then "verified" a fabricated approval against it. The
    /// record's signer must be the wallet's co-signer on chain, or a key the auditor names.
    #[test]
    fn decision_record_of_an_agent_key_does_not_verify() {
        let agent = Address::repeat_byte(0xaa);
        let (_, signers) = service();
        let checked = check_decisions(&bundle_with_decision(agent), &signers, false);
        assert!(
            checked.is_err() || checked.is_ok_and(|c| c.verified == 0),
            "a decision record signed by an agent key proved a decision"
        );
        // Nor with nothing to accept it: no co-signer read from the chain, no key named.
        let none = check_decisions(
            &bundle_with_decision(agent),
            &DecisionSigners::default(),
            true,
        );
        assert!(none.is_err(), "{none:?}");
    }

    /// Red team (rt29 F2): a verified decision's payments, agent and method were not compared
    /// with its record: a doctored bundle changed what was paid, to whom and by whose agent,
    /// and the decision still counted as verified. Approvers, which no decision record
    /// commits to, are reported as unchecked rather than verified.
    #[test]
    fn doctored_payments_and_approvers_do_not_verify() {
        let (key, signers) = service();
        let doctorings: [Doctoring<DecisionView>; 6] = [
            ("amount", |d| {
                d.payments[0].amount_base_units.0 = U256::from(1_000_000)
            }),
            ("recipient", |d| {
                d.payments[0].recipients = vec![Address::repeat_byte(0x45)];
            }),
            ("a payment added", |d| {
                let mut more = d.payments[0].clone();
                more.recipients = vec![Address::repeat_byte(0x47)];
                d.payments.push(more);
                d.payments_text.push("to 0x47…".into());
            }),
            ("method", |d| {
                d.method = Some(chaperone_api::ledger::PaymentKind::Permit2);
            }),
            ("agent", |d| d.agent = Some(Address::repeat_byte(0x46))),
            ("words beside no payment", |d| {
                d.payments_text.push("1000000 USDC to 0x44".into());
            }),
        ];
        for (what, doctor) in doctorings {
            let mut bundle = bundle_with_decision(key);
            doctor(&mut bundle.decisions[0]);
            let checked = check_decisions(&bundle, &signers, true);
            assert!(
                checked.is_err() || checked.is_ok_and(|c| c.verified == 0),
                "a decision whose {what} contradicts its record verified"
            );
        }
        let mut bundle = bundle_with_decision(key);
        bundle.decisions[0].approvers = vec!["alice".into(), "bob".into()];
        let checked = check_decisions(&bundle, &signers, false).expect("verifies");
        assert_eq!(
            checked.approvers_unchecked,
            [bundle.decisions[0].request_id],
            "approvers no record commits to were counted as checked"
        );
    }

    /// Red team (rt29 F9): a bundle could label doctored decisions unverified (no logged leaf,
    /// no opening, version 1) and still verify. A version-2 bundle with an unverified
    /// decision fails unless the auditor accepts them; a decision shown twice, or an opening
    /// of no decision shown, is an edited bundle.
    #[test]
    fn unverified_decisions_fail_unless_the_auditor_accepts_them() {
        let (key, signers) = service();
        let doctorings: [Doctoring<EvidenceBundle>; 4] = [
            ("no logged leaf", |b| b.decisions[0].logged_leaf = None),
            ("no opening", |b| b.decision_openings.clear()),
            ("record left out", |b| b.records.clear()),
            ("version 1", |b| b.version = 1),
        ];
        for (what, doctor) in doctorings {
            let mut bundle = bundle_with_decision(key);
            doctor(&mut bundle);
            assert!(
                check_decisions(&bundle, &signers, false).is_err(),
                "{what}: an unverified decision passed"
            );
            let accepted = check_decisions(&bundle, &signers, true).expect("verifies");
            assert_eq!(
                (accepted.verified, accepted.unverified.len()),
                (0, 1),
                "{what}"
            );
        }
        let mut twice = bundle_with_decision(key);
        twice.decisions.push(twice.decisions[0].clone());
        assert!(check_decisions(&twice, &signers, true).is_err());
        let mut stray = bundle_with_decision(key);
        stray.decision_openings[0].request_id = B256::repeat_byte(0x99);
        assert!(check_decisions(&stray, &signers, true).is_err());
    }
}
