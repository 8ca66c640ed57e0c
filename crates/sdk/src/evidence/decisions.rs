//! A bundle's decisions checked against their own records (already proved included), through
//! the openings the bundle carries: every decision record of the bundle is opened (one for
//! each record: a request re-decided after a human approval has several), must be signed by
//! the policy service (the wallet's on-chain `cosigner()` at the first anchoring that holds the
//! record, or a key the auditor names), and its commitments must open to the request and the
//! decision. A decision record dated in the bundle's period must be a record of a decision the
//! bundle shows (one left out with its decision is caught here, or as a gap in its signer's
//! chain, `chains.rs`), and every field a decision shows must be its LAST record's: request
//! id, wallet, time, outcome, reasons, policy, co-signature, and what the request asks
//! (method, what each token pays to whom, the agent who signed it). A contradiction makes the
//! bundle invalid. A decision that cannot be checked (no record, no opening, a version-1
//! bundle) is unverified: the bundle fails unless the auditor accepts unverified decisions
//! (red team rt29 F1, F2, F9; third review: completeness and superseded records).

use std::collections::{HashMap, HashSet};

use chaperone_api::{
    CosignRequest,
    compliance::DecisionView,
    evidence::{DECISION_RECORD_MODEL, DecisionOpening, DecisionRecordContent, EvidenceBundle},
    ledger::DecisionPayment,
};
use chaperone_core::{
    Address, B256, Commitment, CommitmentKind, Record, Signature, readable::units, recover_low_s,
};

use super::{ServerWord, UnverifiedDecision, invalid};
use crate::Result;

/// Who may sign a decision record.
#[derive(Debug, Clone, Default)]
pub(crate) struct DecisionSigners {
    /// Keys the auditor named.
    pub(crate) named: Vec<Address>,
    /// Each (wallet, record leaf): the wallet's `cosigner()` at the anchoring block of the
    /// first checkpoint of the bundle that holds the record.
    pub(crate) on_chain: HashMap<(Address, B256), Address>,
    /// The chain those co-signers were read from: a recorded request must be of it.
    pub(crate) chain_id: u64,
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
    /// Decision records opened (every record of every decision shown that the bundle holds).
    pub(crate) records_opened: usize,
    /// Verified decisions' fields that no record commits to.
    pub(crate) server_word: Vec<ServerWord>,
}

/// A decision record opened: the request and the decision it commits to.
struct Opened {
    request: CosignRequest,
    content: DecisionRecordContent,
}

/// The wallet a decision opening names (to read its co-signer), when its request parses.
pub(crate) fn opening_wallet(opening: &DecisionOpening) -> Option<Address> {
    serde_json::from_str::<CosignRequest>(&opening.request)
        .ok()
        .map(|r| r.wallet)
}

/// Checks every decision record of `bundle` and every decision shown against them. Unverified
/// decisions fail the bundle unless `allow_unverified`.
pub(crate) fn check_decisions(
    bundle: &EvidenceBundle,
    signers: &DecisionSigners,
    allow_unverified: bool,
) -> Result<CheckedDecisions> {
    let records: HashMap<B256, (u64, Record)> = bundle
        .records
        .iter()
        .filter_map(|r| Some((r.leaf_hash, (r.index, Record::decode(&r.leaf_data).ok()?))))
        .collect();
    // One view per decision, and one opening per decision record of the bundle, of a decision
    // shown (an extra opening, or a second view of one decision, is a bundle that was edited).
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
        let of_a_decision_record = records
            .get(&o.leaf_hash)
            .is_some_and(|(_, r)| r.model == DECISION_RECORD_MODEL);
        if !shown.contains(&o.request_id)
            || !of_a_decision_record
            || openings.insert(o.leaf_hash, o).is_some()
        {
            return Err(invalid(format!(
                "the opening of record {} (decision {}) belongs to no single record of a \
                 decision of the bundle",
                o.leaf_hash, o.request_id
            )));
        }
    }
    // Every decision record: opened, of a decision shown, signed by the service; or, without
    // an opening, dated outside the period (a decision of another period).
    let period = bundle.from.saturating_mul(1000)..bundle.to.saturating_mul(1000);
    let mut opened: HashMap<B256, Opened> = HashMap::new();
    let mut last_of: HashMap<B256, (u64, B256)> = HashMap::new();
    for r in &bundle.records {
        let Some((index, record)) = records.get(&r.leaf_hash) else {
            continue;
        };
        if record.model != DECISION_RECORD_MODEL {
            continue;
        }
        let Some(opening) = openings.get(&r.leaf_hash) else {
            // A decision shown whose record is not opened is unverified (below); any other
            // decision record of the period is one whose decision was left out.
            let shown_leaf = bundle
                .decisions
                .iter()
                .any(|d| d.logged_leaf == Some(r.leaf_hash));
            if bundle.version > 1 && !shown_leaf && period.contains(&record.timestamp_ms) {
                return Err(invalid(format!(
                    "record {index} is a decision record of the period that the bundle does not \
                     open: its decision was left out of the bundle"
                )));
            }
            continue;
        };
        let id = opening.request_id;
        let record_opened = open_record(record, opening)?;
        if record_opened.request.chain_id != signers.chain_id {
            return Err(invalid(format!(
                "decision {id}: its recorded request is for chain {}; the RPC serves chain {}",
                record_opened.request.chain_id, signers.chain_id
            )));
        }
        if !signers.allow(record_opened.request.wallet, r.leaf_hash, record.agent) {
            return Err(invalid(format!(
                "decision {id}: its record {index} is signed by {}, neither the wallet's \
                 co-signer on chain when the record was anchored nor a key you named \
                 (--decision-signer)",
                record.agent
            )));
        }
        let last = last_of.entry(id).or_insert((*index, r.leaf_hash));
        if *index >= last.0 {
            *last = (*index, r.leaf_hash);
        }
        opened.insert(r.leaf_hash, record_opened);
    }
    let mut checked = CheckedDecisions {
        verified: 0,
        unverified: Vec::new(),
        signers: Vec::new(),
        approvers_unchecked: Vec::new(),
        records_opened: opened.len(),
        server_word: Vec::new(),
    };
    for d in &bundle.decisions {
        // The decision as it stands is its last record: an earlier one ("pending", before a
        // human approved) cannot stand for it.
        if let (Some(leaf), Some((_, last))) = (d.logged_leaf, last_of.get(&d.request_id))
            && opened.contains_key(&leaf)
            && leaf != *last
        {
            return Err(invalid(format!(
                "decision {}: it shows its record {leaf}, but a later record of it ({last}) is \
                 in the bundle: a superseded record cannot stand for it",
                d.request_id
            )));
        }
        let why = match (d.logged_leaf, bundle.version) {
            (_, 1) => Some("a version-1 bundle carries no openings"),
            (None, _) => Some("not yet logged when the bundle was made"),
            (Some(leaf), _) if !records.contains_key(&leaf) => {
                Some("its record is not in the bundle (not yet anchored, or left out)")
            }
            (Some(leaf), _) if !opened.contains_key(&leaf) => {
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
        let Some((leaf, record_opened)) = d
            .logged_leaf
            .and_then(|leaf| Some((leaf, opened.get(&leaf)?)))
        else {
            continue;
        };
        let record = &records[&leaf].1;
        check_view(d, record, record_opened)?;
        checked.verified += 1;
        if !d.approvers.is_empty() || d.approval_comment.is_some() {
            checked.approvers_unchecked.push(d.request_id);
        }
        let fields = server_word(d);
        if !fields.is_empty() {
            checked.server_word.push(ServerWord {
                request_id: d.request_id,
                fields: fields.into_iter().map(str::to_owned).collect(),
            });
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

/// Opens `record` (a decision record) with `opening`: its commitments must open to the
/// opening's request and decision, and the request must be the opening's decision.
fn open_record(record: &Record, opening: &DecisionOpening) -> Result<Opened> {
    let id = opening.request_id;
    let wrong = |what: &str| invalid(format!("decision {id}: {what}"));
    if opening.leaf_hash != record.leaf_hash().map_err(|e| wrong(&e.to_string()))? {
        return Err(wrong("its opening is of another record"));
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
    if request.payment.digest(request.chain_id, request.wallet) != id {
        return Err(wrong("its request id is not its recorded request's digest"));
    }
    Ok(Opened { request, content })
}

/// What a verified decision shows that no record commits to: the server's word only.
pub(crate) fn server_word(d: &DecisionView) -> Vec<&'static str> {
    let mut fields = Vec::new();
    if !d.approvers.is_empty() || d.approval_comment.is_some() {
        fields.push("approvers and comment");
    }
    if !d.reasons_text.is_empty() {
        fields.push("reasons in words");
    }
    if !d.payments.is_empty() {
        fields.push("token symbols and decimals");
    }
    if d.payments
        .iter()
        .any(|p| p.status.is_some() || p.settlement_tx.is_some() || p.settled_at.is_some())
    {
        fields.push("payment status and settlement");
    }
    if d.call_leaf_hash.is_some() {
        fields.push("the model call it was paid within (call_leaf_hash)");
    }
    fields
}

/// Fails unless `d` says what its (last) record `record`, opened as `opened`, says.
fn check_view(d: &DecisionView, record: &Record, opened: &Opened) -> Result<()> {
    let id = d.request_id;
    let wrong = |what: &str| invalid(format!("decision {id}: {what}"));
    let Opened { request, content } = opened;
    // The agent is whoever signed the recorded request (the server checked it was the
    // wallet's agent before deciding).
    let agent = Signature::from_raw(&request.agent_signature)
        .ok()
        .and_then(|s| recover_low_s(&s, &id).ok());
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
        // The words and the decimal amounts say what the base units say (the symbol and the
        // decimals are the server's word: read from the token, not in the record).
        (
            d.payments
                .iter()
                .all(|p| p.amount == units(p.amount_base_units.0, p.token_decimals)),
            "an amount in token units is not its amount in base units",
        ),
        (
            d.payments
                .iter()
                .map(DecisionPayment::words)
                .eq(d.payments_text.iter().cloned()),
            "what it pays in words is not what its payments say",
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
            "payments_text": [
                "0.000000000000000001 ETH to 0x2222222222222222222222222222222222222222; settled"
            ],
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
            chain_id: 1,
        };
        (key, signers)
    }

    #[test]
    fn a_decision_that_says_what_its_record_says_verifies() {
        let (key, signers) = service();
        let checked =
            check_decisions(&bundle_with_decision(key), &signers, false).expect("verifies");
        assert_eq!((checked.verified, checked.signers), (1, vec![key]));
        // Not against another chain: the request is chain 1's (third red-team review, Low).
        let elsewhere = DecisionSigners {
            chain_id: 2,
            ..signers.clone()
        };
        assert!(
            check_decisions(&bundle_with_decision(key), &elsewhere, true).is_err(),
            "a decision of chain 1 verified against chain 2's co-signers"
        );
        // A key the auditor names is accepted as well.
        let named = DecisionSigners {
            named: vec![key],
            on_chain: HashMap::new(),
            chain_id: 1,
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

    /// Third red-team review (Medium): a verified decision's payments in words and decimal
    /// amounts were not compared with its record (only how many there were): a bundle could
    /// say "1000 USDC" beside the record's 1 base unit. They are recomputed from the base
    /// units; what no record holds (symbols, decimals, status, settlement, the call it was
    /// paid within, reasons in words) is listed as the server's word.
    #[test]
    fn payment_words_and_amounts_that_contradict_the_record_do_not_verify() {
        let (key, signers) = service();
        let doctorings: [Doctoring<DecisionView>; 3] = [
            ("decimal amount", |d| d.payments[0].amount = "1000".into()),
            ("words", |d| {
                d.payments_text[0] =
                    "1000 ETH to 0x2222222222222222222222222222222222222222".into();
            }),
            ("words and amount, edited alike", |d| {
                d.payments[0].amount = "1".into();
                d.payments_text[0] = d.payments[0].words();
            }),
        ];
        for (what, doctor) in doctorings {
            let mut bundle = bundle_with_decision(key);
            doctor(&mut bundle.decisions[0]);
            let checked = check_decisions(&bundle, &signers, true);
            assert!(
                checked.is_err() || checked.is_ok_and(|c| c.verified == 0),
                "a decision whose payment's {what} contradicts its record verified"
            );
        }
        let mut bundle = bundle_with_decision(key);
        bundle.decisions[0].call_leaf_hash = Some(B256::repeat_byte(0x55));
        let checked = check_decisions(&bundle, &signers, false).expect("verifies");
        assert_eq!(checked.server_word.len(), 1);
        assert_eq!(
            checked.server_word[0].fields,
            [
                "token symbols and decimals",
                "payment status and settlement",
                "the model call it was paid within (call_leaf_hash)"
            ],
            "fields no record holds were not reported as the server's word"
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
            ("record not yet anchored", |b| {
                b.records.clear();
                b.decision_openings.clear();
            }),
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
        // An opening of a record the bundle does not hold is an edited bundle too.
        let mut unheld = bundle_with_decision(key);
        unheld.records.clear();
        assert!(check_decisions(&unheld, &signers, true).is_err());
    }

    /// A bundle of the policy service's chain of decision records signed by `key`, one per
    /// step (the request of payment nonce `n`, decided with `outcome`), all received in the
    /// period and opened; each request is shown as its last record says.
    fn service_chain(key: &Secp256k1Signer, steps: &[(u64, Outcome)]) -> EvidenceBundle {
        let wallet = Address::repeat_byte(0x11);
        let agent = Secp256k1Signer::from_bytes(&B256::repeat_byte(0x44)).expect("a key");
        let mut bundle = EvidenceBundle {
            version: EVIDENCE_VERSION,
            from: 1_700_000_000,
            to: 1_700_100_000,
            agents: vec![],
            wallets: vec![],
            records: vec![],
            unanchored_records: 0,
            checkpoints: vec![],
            consistency: vec![],
            decisions: vec![],
            decision_openings: vec![],
        };
        let mut previous = B256::ZERO;
        let mut views: Vec<DecisionView> = Vec::new();
        for (index, (nonce, outcome)) in steps.iter().enumerate() {
            let payment = Payment::Execute(Execute {
                calls: vec![Call {
                    to: Address::repeat_byte(0x22),
                    value: U256::from(1),
                    data: Bytes::new(),
                }],
                nonce: U256::from(*nonce),
                validUntil: 2_000_000_000,
            });
            let request_id = payment.digest(1, wallet);
            let signature = agent.sign_digest(&request_id).expect("signs");
            let request_json = serde_json::to_string(&CosignRequest {
                chain_id: 1,
                wallet,
                payment,
                agent_signature: Bytes::from(signature.as_bytes().to_vec()),
            })
            .expect("serialises");
            let signed = *outcome == Outcome::Approved;
            let decision_json = serde_json::to_string(&DecisionRecordContent {
                outcome: *outcome,
                reasons: vec![],
                policy_version: 1,
                policy_hash: B256::repeat_byte(0x33),
                cosigner_signature: signed.then(|| "0x00".into()),
            })
            .expect("serialises");
            let created_at = 1_700_000_000 + nonce;
            let (input_salt, output_salt) = (Salt([index as u8; 32]), Salt([0xf0; 32]));
            let record = Record {
                agent: key.address(),
                sequence: index as u64,
                timestamp_ms: created_at * 1000,
                model: DECISION_RECORD_MODEL.into(),
                input: Commitment::compute(
                    CommitmentKind::Input,
                    &input_salt,
                    request_json.as_bytes(),
                ),
                output: Commitment::compute(
                    CommitmentKind::Output,
                    &output_salt,
                    decision_json.as_bytes(),
                ),
                metadata: None,
                previous,
            };
            let leaf = record.leaf_hash().expect("a valid record");
            previous = leaf;
            bundle.records.push(EvidenceRecord {
                index: index as u64,
                leaf_hash: leaf,
                leaf_data: Bytes::from(record.encode().expect("a valid record")),
                agent: key.address(),
                model: DECISION_RECORD_MODEL.into(),
                timestamp_ms: record.timestamp_ms,
                received_ms: 1_700_050_000_000 + index as u64,
                inclusion: InclusionProof {
                    index: index as u64,
                    size: steps.len() as u64,
                    path: vec![],
                },
            });
            bundle.decision_openings.push(DecisionOpening {
                request_id,
                leaf_hash: leaf,
                request: request_json,
                input_salt,
                decision: decision_json,
                output_salt,
            });
            let view: DecisionView = serde_json::from_value(serde_json::json!({
                "request_id": request_id, "wallet": wallet, "created_at": created_at,
                "created_at_iso": "", "outcome": outcome, "reasons": [], "reasons_text": [],
                "policy_version": 1, "policy_hash": B256::repeat_byte(0x33), "signed": signed,
                "logged_leaf": leaf, "call_leaf_hash": null,
            }))
            .expect("a decision view");
            match views.iter_mut().find(|v| v.request_id == request_id) {
                Some(shown) => *shown = view,
                None => views.push(view),
            }
        }
        bundle.decisions = views;
        bundle
    }

    /// What `verify_evidence` checks once the proofs hold: the chains, then the decisions.
    fn verify_offline(
        bundle: &EvidenceBundle,
        key: &Secp256k1Signer,
        allow_unverified: bool,
    ) -> Result<CheckedDecisions> {
        super::super::chains::check_chains(bundle)?;
        let named = DecisionSigners {
            named: vec![key.address()],
            on_chain: HashMap::new(),
            chain_id: 1,
        };
        check_decisions(bundle, &named, allow_unverified)
    }

    /// Removes the decision of request `id`, and its openings (and its records when
    /// `with_records`).
    fn leave_out(bundle: &mut EvidenceBundle, id: B256, with_records: bool) {
        let leaves: Vec<B256> = bundle
            .decision_openings
            .iter()
            .filter(|o| o.request_id == id)
            .map(|o| o.leaf_hash)
            .collect();
        bundle.decisions.retain(|d| d.request_id != id);
        bundle.decision_openings.retain(|o| o.request_id != id);
        if with_records {
            bundle.records.retain(|r| !leaves.contains(&r.leaf_hash));
        }
    }

    /// Third red-team review (High): `verify --bundle` checked the decisions it was shown,
    /// never that none was missing: a bundle leaving out a decision together with its record
    /// verified. The service's records received in the period must chain without a gap, and
    /// every decision record of the period must be a decision shown.
    #[test]
    fn a_decision_left_out_with_its_record_does_not_verify() {
        let key = Secp256k1Signer::from_bytes(&B256::repeat_byte(0xcc)).expect("a key");
        let steps = [
            (0, Outcome::Approved),
            (1, Outcome::Denied),
            (2, Outcome::Approved),
        ];
        let honest = service_chain(&key, &steps);
        let checked = verify_offline(&honest, &key, false).expect("the honest bundle verifies");
        assert_eq!((checked.verified, checked.records_opened), (3, 3));
        let denied = honest.decisions[1].request_id;

        let mut with_record = honest.clone();
        leave_out(&mut with_record, denied, true);
        let left_out = verify_offline(&with_record, &key, true);
        assert!(
            left_out.is_err(),
            "a decision left out with its record verified: {left_out:?}"
        );
        let mut record_kept = honest.clone();
        leave_out(&mut record_kept, denied, false);
        let left_out = verify_offline(&record_kept, &key, true);
        assert!(
            left_out.is_err(),
            "a decision left out beside its record verified: {left_out:?}"
        );
        // A decision record dated outside the period is another period's: not opened, fine.
        let mut earlier = service_chain(&key, &steps);
        earlier.from = 1_700_000_001;
        leave_out(&mut earlier, honest.decisions[0].request_id, false);
        assert_eq!(
            verify_offline(&earlier, &key, false)
                .expect("verifies")
                .verified,
            2
        );
    }

    /// Third red-team review (Medium-high): a re-decided request keeps its superseded
    /// ("pending") record in the log, and the server kept one opening per request: a bundle
    /// could show the request as that record says, pending, though it was later approved
    /// (and paid). Every decision record is opened, and a decision shown must be its last.
    #[test]
    fn a_superseded_pending_record_does_not_verify_an_approved_request() {
        let key = Secp256k1Signer::from_bytes(&B256::repeat_byte(0xcc)).expect("a key");
        let honest = service_chain(
            &key,
            &[
                (0, Outcome::PendingApproval),
                (1, Outcome::Approved),
                (0, Outcome::Approved),
                (2, Outcome::Denied),
            ],
        );
        let checked = verify_offline(&honest, &key, false).expect("the honest bundle verifies");
        assert_eq!((checked.verified, checked.records_opened), (3, 4));
        assert_eq!(honest.decisions[0].outcome, Outcome::Approved);

        // The request shown as its pending record says (the first record, opened first).
        let doctorings: [Doctoring<EvidenceBundle>; 3] = [
            ("with every opening", |b| {
                let pending = b.decision_openings[0].clone();
                let d = &mut b.decisions[0];
                (d.outcome, d.signed, d.logged_leaf) =
                    (Outcome::PendingApproval, false, Some(pending.leaf_hash));
            }),
            (
                "the approved record's opening left out (one opening per request)",
                |b| {
                    let pending = b.decision_openings[0].clone();
                    let d = &mut b.decisions[0];
                    (d.outcome, d.signed, d.logged_leaf) =
                        (Outcome::PendingApproval, false, Some(pending.leaf_hash));
                    b.decision_openings.remove(2);
                },
            ),
            ("the approved record left out with its opening", |b| {
                let pending = b.decision_openings[0].clone();
                let d = &mut b.decisions[0];
                (d.outcome, d.signed, d.logged_leaf) =
                    (Outcome::PendingApproval, false, Some(pending.leaf_hash));
                b.decision_openings.remove(2);
                b.records.remove(2);
            }),
        ];
        for (what, doctor) in doctorings {
            let mut bundle = honest.clone();
            doctor(&mut bundle);
            let checked = verify_offline(&bundle, &key, true);
            assert!(
                checked.is_err(),
                "an approved request shown as its superseded pending record verified ({what}): \
                 {checked:?}"
            );
        }
    }
}
