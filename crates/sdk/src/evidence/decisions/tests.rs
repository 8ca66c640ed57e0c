//! The decisions' check against bundles made by hand: honest ones verify, doctored ones not.

use super::*;

/// A named change made to a decision or a bundle.
pub(crate) type Doctoring<T> = (&'static str, fn(&mut T));

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
    let checked = check_decisions(&bundle_with_decision(key), &signers, false).expect("verifies");
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
/// units; what no record holds (ERC-20 symbols and decimals, status, settlement, the call it was
/// paid within, reasons in words) is listed as the server's word.
#[test]
fn payment_words_and_amounts_that_contradict_the_record_do_not_verify() {
    let (key, signers) = service();
    let doctorings: [Doctoring<DecisionView>; 3] = [
        ("decimal amount", |d| d.payments[0].amount = "1000".into()),
        ("words", |d| {
            d.payments_text[0] = "1000 ETH to 0x2222222222222222222222222222222222222222".into();
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
        ("version 1 (its record not yet anchored)", |b| {
            b.version = 1;
            b.records.clear();
            b.decision_openings.clear();
        }),
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

/// The policy service's key in these tests.
pub(crate) fn service_key() -> Secp256k1Signer {
    Secp256k1Signer::from_bytes(&B256::repeat_byte(0xcc)).expect("a key")
}

/// The service's key and its honest bundle of three decisions: D1 approved, H denied, D3
/// approved, logged in that order.
pub(crate) fn three_decisions() -> (Secp256k1Signer, EvidenceBundle) {
    let key = service_key();
    let bundle = service_chain(
        &key,
        &[
            (0, Outcome::Approved),
            (1, Outcome::Denied),
            (2, Outcome::Approved),
        ],
    );
    (key, bundle)
}

/// A bundle of the policy service's chain of decision records signed by `key`, one per
/// step (the request of payment nonce `n`, decided with `outcome`), all received in the
/// period and opened; each request is shown as its last record says.
pub(crate) fn service_chain(key: &Secp256k1Signer, steps: &[(u64, Outcome)]) -> EvidenceBundle {
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
            input: Commitment::compute(CommitmentKind::Input, &input_salt, request_json.as_bytes()),
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
pub(crate) fn verify_offline(
    bundle: &EvidenceBundle,
    key: &Secp256k1Signer,
    allow_unverified: bool,
) -> Result<CheckedDecisions> {
    super::super::scope::check_period(bundle)?;
    super::super::chains::check_receive_times(bundle)?;
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
pub(crate) fn leave_out(bundle: &mut EvidenceBundle, id: B256, with_records: bool) {
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
    let (key, honest) = three_decisions();
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
    let mut earlier = honest.clone();
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

/// Fourth red-team review (A, Medium): a view's request id was never compared with its
/// record's request: one genuine record verified any number of extra views under made-up
/// request ids (another spend covered by a "verified, approved" decision).
#[test]
fn a_view_under_another_request_id_does_not_verify() {
    let (key, signers) = service();
    let mut extra = bundle_with_decision(key);
    let mut other = extra.decisions[0].clone();
    other.request_id = B256::repeat_byte(0x77);
    extra.decisions.push(other);
    let checked = check_decisions(&extra, &signers, true);
    assert!(
        checked.is_err(),
        "a second view of one record, under another request id, verified: {checked:?}"
    );
    // The server's bundle shows no agent: the id must still be the record's.
    let mut bare = bundle_with_decision(key);
    bare.decisions[0].agent = None;
    let mut other = bare.decisions[0].clone();
    other.request_id = B256::repeat_byte(0x78);
    bare.decisions.push(other);
    assert!(check_decisions(&bare, &signers, true).is_err());
}

/// Fourth red-team review (B, Low-medium): a bundle relabelled version 1 skipped the check
/// that every decision record of the period is opened: every decision could be hidden.
#[test]
fn a_version_1_bundle_holding_decision_records_does_not_verify() {
    let (key, signers) = service();
    let mut hidden = bundle_with_decision(key);
    hidden.version = 1;
    hidden.decisions.clear();
    hidden.decision_openings.clear();
    let checked = check_decisions(&hidden, &signers, true);
    assert!(
        checked.is_err(),
        "a version-1 bundle hid its decision records: {checked:?}"
    );
}

/// Fourth red-team review (E, High): an approval logged after the period's `to` keeps the
/// request's `created_at`, so its record is received after `to`, where records are not
/// chain-checked: a bundle dropping it (and its opening) showed the request as its
/// superseded pending record, verified. A pending record shown as final is unverified: no
/// bundle proves that no later record of the request exists.
#[test]
fn a_pending_record_superseded_after_the_period_does_not_verify() {
    let key = Secp256k1Signer::from_bytes(&B256::repeat_byte(0xcc)).expect("a key");
    let mut honest = service_chain(
        &key,
        &[
            (0, Outcome::PendingApproval),
            (1, Outcome::Approved),
            (0, Outcome::Approved),
        ],
    );
    // The approval is received after the period.
    honest.records[2].received_ms = honest.to * 1000 + 5;
    verify_offline(&honest, &key, false).expect("the honest bundle verifies");
    let mut doctored = honest.clone();
    let pending = doctored.decision_openings[0].clone();
    let d = &mut doctored.decisions[0];
    (d.outcome, d.signed, d.logged_leaf) =
        (Outcome::PendingApproval, false, Some(pending.leaf_hash));
    doctored.decision_openings.remove(2);
    doctored.records.remove(2);
    let checked = verify_offline(&doctored, &key, false);
    assert!(
        checked.is_err(),
        "an approved request shown as its pending record verified: {checked:?}"
    );
    // Accepted as unverified, it is listed so: pending, apart from the other unverified.
    let accepted = verify_offline(&doctored, &key, true).expect("accepted as unverified");
    assert_eq!((accepted.unverified.len(), accepted.pending.len()), (0, 1));
}

/// Fourth red-team review (F, Medium-high): the period and scope were the bundle author's
/// word, never pinned: a bundle with its `to` moved, or scoped to other agents, verified as
/// the one asked for. What the auditor pins must be the bundle's.
#[test]
fn a_bundle_of_another_period_or_scope_than_asked_for_does_not_verify() {
    use super::super::scope::{ExpectedScope, check_expected};
    let key = Secp256k1Signer::from_bytes(&B256::repeat_byte(0xcc)).expect("a key");
    let bundle = service_chain(&key, &[(0, Outcome::Approved), (1, Outcome::Denied)]);
    let asked = ExpectedScope {
        from: Some(bundle.from),
        to: Some(bundle.to),
        agents: Some(vec![]),
        wallets: Some(vec![]),
    };
    check_expected(&bundle, &asked).expect("the bundle asked for");
    check_expected(&bundle, &ExpectedScope::default()).expect("nothing pinned");
    let doctorings: [Doctoring<EvidenceBundle>; 4] = [
        ("to moved", |b| b.to -= 1),
        ("from moved", |b| b.from += 1),
        ("scoped to an agent", |b| {
            b.agents = vec![Address::repeat_byte(0x44)]
        }),
        ("scoped to a wallet", |b| {
            b.wallets = vec![Address::repeat_byte(0x11)]
        }),
    ];
    for (what, doctor) in doctorings {
        let mut doctored = bundle.clone();
        doctor(&mut doctored);
        assert!(
            check_expected(&doctored, &asked).is_err(),
            "{what}: a bundle of another period or scope passed as the one asked for"
        );
    }
}

/// Fourth red-team review (F): out-of-period content was accepted: a decision dated outside
/// the period, a record received outside it that is no record of a decision shown (a
/// record moved past `to` to take it out of the chain check), or a record received after
/// the checkpoint holding it was anchored.
#[test]
fn out_of_period_content_does_not_verify() {
    use super::super::scope::check_received_before_anchoring;
    let (key, honest) = three_decisions();
    verify_offline(&honest, &key, false).expect("the honest bundle verifies");

    // The period moved past the first decision, which stays.
    let mut early = honest.clone();
    early.from += 1;
    let checked = verify_offline(&early, &key, true);
    assert!(
        checked.is_err(),
        "a decision dated before the period verified: {checked:?}"
    );
    // A record received before the period, of no decision shown (its decision left out).
    let mut stray = honest.clone();
    stray.from += 1;
    leave_out(&mut stray, honest.decisions[0].request_id, false);
    stray.records[0].received_ms = stray.from * 1000 - 1;
    let checked = verify_offline(&stray, &key, true);
    assert!(
        checked.is_err(),
        "a record from outside the period, of no decision shown, verified: {checked:?}"
    );
    // The denied decision left out with its record, and the next record said to be received
    // after `to` (out of the chain check): its checkpoint was anchored before `to`.
    let mut moved = honest.clone();
    leave_out(&mut moved, honest.decisions[1].request_id, true);
    moved.records[1].received_ms = moved.to * 1000 + 1;
    let anchored = [(3, honest.to - 100)];
    check_received_before_anchoring(&honest, &anchored).expect("received before anchoring");
    assert!(
        check_received_before_anchoring(&moved, &anchored).is_err(),
        "a record said to be received after the checkpoint holding it was anchored passed"
    );
}

/// Fourth red-team review (D, Low): a payment's decimals and symbol were free, even for the
/// native token: 1 wei verified as "1 ETH" (decimals 0), or as "0.000000000000000001 BTC".
/// The native token's are the chain's (ETH, 18).
#[test]
fn native_payments_in_other_units_do_not_verify() {
    let (key, signers) = service();
    let doctorings: [Doctoring<DecisionView>; 2] = [
        ("decimals", |d| {
            d.payments[0].token_decimals = 0;
            d.payments[0].amount = "1".into();
            d.payments_text[0] = d.payments[0].words();
        }),
        ("symbol", |d| {
            d.payments[0].token_symbol = "BTC".into();
            d.payments_text[0] = d.payments[0].words();
        }),
    ];
    for (what, doctor) in doctorings {
        let mut bundle = bundle_with_decision(key);
        doctor(&mut bundle.decisions[0]);
        let checked = check_decisions(&bundle, &signers, true);
        assert!(
            checked.is_err(),
            "a native payment shown in other units ({what}) verified: {checked:?}"
        );
    }
}
