//! The fifth red-team review of issue 29: a request that waited for a human ends with a final
//! record (denied by a human, or expired), a pending one is reported apart, a scoped bundle says
//! that its decisions' completeness is not checked, and a view cannot name a record of another
//! kind as its own.

use chaperone_api::evidence::EvidenceRecord;
use chaperone_core::{InclusionProof, Salt, Secp256k1Signer, policy::Outcome};

use super::{
    super::{chains::check_chains, scope::decisions_completeness},
    tests::{leave_out, service_chain, service_key, verify_offline},
    *,
};

/// Fifth red-team review (Medium): a human denial or an expired approval left the decision
/// `pending_approval` for ever, so an honest bundle of such a period verified only with
/// `--allow-unverified`, and an auditor who passed it routinely could not tell a superseded
/// pending record from an honest one. The service now logs a final record (denied) after the
/// pending one: the bundle verifies without the flag. A request still pending when the bundle
/// was made stays unverified, listed apart from the other unverified decisions.
#[test]
fn a_request_denied_or_expired_while_waiting_verifies_by_its_final_record() {
    let key = service_key();
    // Request 0 waits and a human denies it; request 1 waits until its approval expires.
    let honest = service_chain(
        &key,
        &[
            (0, Outcome::PendingApproval),
            (1, Outcome::PendingApproval),
            (0, Outcome::Denied),
            (1, Outcome::Denied),
        ],
    );
    let checked = verify_offline(&honest, &key, false)
        .expect("an honest bundle of a denial and an expiry verifies without --allow-unverified");
    assert_eq!(
        (
            checked.verified,
            checked.records_opened,
            checked.pending.len()
        ),
        (2, 4, 0)
    );

    // Request 2 is still waiting: unverified, and listed apart from the other unverified.
    let waiting = service_chain(
        &key,
        &[
            (0, Outcome::PendingApproval),
            (2, Outcome::PendingApproval),
            (0, Outcome::Denied),
        ],
    );
    let refused = verify_offline(&waiting, &key, false);
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("pending")),
        "a decision still pending verified without --allow-unverified: {refused:?}"
    );
    let accepted = verify_offline(&waiting, &key, true).expect("accepted as unverified");
    assert_eq!(accepted.verified, 1);
    assert!(
        accepted.unverified.is_empty(),
        "a pending decision is listed apart: {:?}",
        accepted.unverified
    );
    let pending: Vec<B256> = accepted.pending.iter().map(|u| u.request_id).collect();
    assert_eq!(pending, [waiting.decisions[1].request_id]);

    // The denied request shown as its pending record, the final record in the bundle: the
    // superseded record cannot stand for it.
    let mut superseded = honest.clone();
    let first = superseded.decision_openings[0].leaf_hash;
    let d = &mut superseded.decisions[0];
    (d.outcome, d.logged_leaf) = (Outcome::PendingApproval, Some(first));
    assert!(verify_offline(&superseded, &key, true).is_err());
}

/// Fifth red-team review (Medium-low): a bundle scoped to agents could leave out every decision
/// without a word (`service_chains_unchecked` listed only the signers of decision records the
/// bundle held, none once they were all left out). A scoped bundle now says, whatever it holds,
/// that its decisions' completeness is not checked.
#[test]
fn a_scoped_bundle_says_that_its_decisions_completeness_is_not_checked() {
    let key = service_key();
    let everything = service_chain(&key, &[(0, Outcome::Approved), (1, Outcome::Denied)]);
    let chains = check_chains(&everything).expect("chains");
    assert!(decisions_completeness(&everything, &chains).checked);

    // Scoped to the paying agent, every decision left out with its record.
    let mut agents = everything.clone();
    agents.agents = vec![
        Secp256k1Signer::from_bytes(&B256::repeat_byte(0x44))
            .expect("a key")
            .address(),
    ];
    for d in &everything.decisions {
        leave_out(&mut agents, d.request_id, true);
    }
    let chains = check_chains(&agents).expect("chains");
    assert!(
        !decisions_completeness(&agents, &chains).checked,
        "a bundle scoped to agents, every decision left out, claimed its decisions complete"
    );

    // Scoped to a wallet, with its decisions.
    let mut wallets = everything.clone();
    wallets.wallets = vec![Address::repeat_byte(0x11)];
    let chains = check_chains(&wallets).expect("chains");
    let completeness = decisions_completeness(&wallets, &chains);
    assert!(!completeness.checked);
    assert_eq!(completeness.service_chains_unchecked, [key.address()]);
}

/// Fifth red-team review (Medium-low): `check_period` counted any view's `logged_leaf` as a
/// decision's record, so a view naming an agent's model-call record pulled it into the bundle
/// from outside the period (with `--allow-unverified`, the view itself only unverified). A view
/// naming a record that is not a decision record is refused.
#[test]
fn a_view_naming_a_model_call_record_does_not_verify() {
    let key = service_key();
    let mut bundle = service_chain(&key, &[(0, Outcome::Approved), (1, Outcome::Denied)]);
    let agent = Secp256k1Signer::from_bytes(&B256::repeat_byte(0x45)).expect("a key");
    let after = bundle.to * 1000 + 1;
    let call = Record {
        agent: agent.address(),
        sequence: 0,
        timestamp_ms: after,
        model: "gpt-test".into(),
        input: Commitment::compute(CommitmentKind::Input, &Salt([3; 32]), b"question"),
        output: Commitment::compute(CommitmentKind::Output, &Salt([4; 32]), b"answer"),
        metadata: None,
        previous: B256::ZERO,
    };
    let leaf = call.leaf_hash().expect("a valid record");
    bundle.records.push(EvidenceRecord {
        index: 2,
        leaf_hash: leaf,
        leaf_data: call.encode().expect("a valid record").into(),
        agent: agent.address(),
        model: call.model.clone(),
        timestamp_ms: after,
        received_ms: after,
        inclusion: InclusionProof {
            index: 2,
            size: 3,
            path: vec![],
        },
    });
    let stray = verify_offline(&bundle, &key, true);
    assert!(
        stray.is_err(),
        "a model call from after the period: {stray:?}"
    );
    bundle.decisions[1].logged_leaf = Some(leaf);
    let named = verify_offline(&bundle, &key, true);
    let error = named.expect_err("a view named a model-call record as its own and verified");
    assert!(
        error.to_string().contains("not a decision record"),
        "{error}"
    );
}
