//! Receive times against bundles made by hand (fifth red-team review of issue 29): a bundle
//! editor who backdates records to take them out of the period, or leaves a record out of a
//! bundle of everything, is caught; honest receive times a few seconds off the chain's clock
//! are not.

use chaperone_api::evidence::EvidenceRecord;
use chaperone_core::{
    B256, Bytes, CommitmentKind, InclusionProof, Opening, RECEIVE_TIME_TOLERANCE_MS, Record,
    Secp256k1Signer,
};

use super::super::decisions::tests::{Doctoring, leave_out, three_decisions, verify_offline};
use super::super::scope::check_received_before_anchoring;
use super::*;

/// Appends an agent's model-call record to `bundle`, received just after its last record.
fn with_agent_record(mut bundle: EvidenceBundle) -> EvidenceBundle {
    let agent = Secp256k1Signer::from_bytes(&B256::repeat_byte(0xab)).expect("a key");
    let commit = |kind, text: &str| {
        Opening::new(kind, text.as_bytes().to_vec())
            .expect("an opening")
            .commitment()
    };
    let record = Record {
        agent: agent.address(),
        sequence: 0,
        timestamp_ms: 1_700_000_500_000,
        model: "gpt-test".into(),
        input: commit(CommitmentKind::Input, "q"),
        output: commit(CommitmentKind::Output, "a"),
        metadata: None,
        previous: B256::ZERO,
    };
    let index = bundle.records.last().map_or(0, |r| r.index + 1);
    let received_ms = bundle.records.last().map_or(0, |r| r.received_ms + 1);
    bundle.records.push(EvidenceRecord {
        index,
        leaf_hash: record.leaf_hash().expect("a valid record"),
        leaf_data: Bytes::from(record.encode().expect("a valid record")),
        agent: agent.address(),
        model: record.model.clone(),
        timestamp_ms: record.timestamp_ms,
        received_ms,
        inclusion: InclusionProof {
            index,
            size: index + 1,
            path: vec![],
        },
    });
    bundle
}

/// Fifth red-team review (High): only the records received in the period were chain-checked,
/// a record of a decision shown could sit before `from`, and `received_ms` (the author's word)
/// was bounded from above only. Dropping decision H with its record and opening, and dating
/// the later decision D3's record 0, left the service's run in the period ending at D1: no
/// gap, VALID. Receive times must not go back in log order, a record of a decision shown is
/// not received before the period, and a service record is not received (beyond the
/// tolerance) before the time it was signed with.
#[test]
fn backdating_the_records_after_a_decision_does_not_hide_it() {
    let (key, honest) = three_decisions();
    verify_offline(&honest, &key, false).expect("the honest bundle verifies");
    let hidden = honest.decisions[1].request_id;
    let first = honest.decisions[0].request_id;
    let doctorings: [Doctoring<EvidenceBundle>; 3] = [
        ("D3's record dated 0", |b| b.records[1].received_ms = 0),
        ("D3's record dated just before the period", |b| {
            b.records[1].received_ms = b.from * 1000 - 1
        }),
        ("D3's record dated before the period, D1 with it", |b| {
            b.records[0].received_ms = b.from * 1000 - 2;
            b.records[1].received_ms = b.from * 1000 - 1;
        }),
    ];
    for (what, doctor) in doctorings {
        let mut bundle = honest.clone();
        leave_out(&mut bundle, hidden, true);
        doctor(&mut bundle);
        let checked = verify_offline(&bundle, &key, true);
        assert!(
            checked.is_err(),
            "decision H hidden by backdating ({what}) verified: {checked:?}"
        );
    }
    // Or D3's record moved past `to` instead (out of the chain check), while an agent's record
    // logged after it stays in the period: the receive times go back in log order. (Scoped to
    // both agents, so that only the order shows it.)
    let mut bundle = with_agent_record(honest.clone());
    bundle.agents = vec![key.address(), bundle.records[3].agent];
    verify_offline(&bundle, &key, false).expect("the honest scoped bundle verifies");
    leave_out(&mut bundle, hidden, true);
    bundle.records[1].received_ms = bundle.to * 1000 + 1;
    let message = verify_offline(&bundle, &key, true)
        .expect_err("moved past the period")
        .to_string();
    assert!(
        message.contains("record 3") && message.contains("before record 2"),
        "{message}"
    );
    // D1 and H both left out, D3's record dated before the period: a record of a decision
    // shown sits before `from`.
    let mut bundle = honest.clone();
    leave_out(&mut bundle, hidden, true);
    leave_out(&mut bundle, first, true);
    bundle.records[0].received_ms = bundle.from * 1000 - 1;
    let message = verify_offline(&bundle, &key, true)
        .expect_err("dated before the period")
        .to_string();
    assert!(message.contains("before the bundle's period"), "{message}");
}

/// Fifth red-team review (High, the bound below): a decision record is logged after the
/// decision it records, so it cannot have been received long before the time the service
/// signed into it; within the tolerance (replicas' clocks) it can.
#[test]
fn a_service_record_received_before_it_was_signed_does_not_verify() {
    let (key, mut honest) = three_decisions();
    // An earlier period start, so that only the signed times bound the receive times.
    honest.from -= 1_000;
    let mut within = honest.clone();
    for r in &mut within.records {
        r.received_ms = r.timestamp_ms - RECEIVE_TIME_TOLERANCE_MS;
    }
    verify_offline(&within, &key, false).expect("received within the tolerance verifies");
    let mut early = honest.clone();
    for r in &mut early.records {
        r.received_ms = r.timestamp_ms - RECEIVE_TIME_TOLERANCE_MS - 1;
    }
    let message = verify_offline(&early, &key, true)
        .expect_err("received before it was signed")
        .to_string();
    assert!(
        message.contains("record 0") && message.contains("before the time it was signed"),
        "{message}"
    );
}

/// Fifth red-team review (High, for a bundle of everything): the log receives records in index
/// order, so a bundle of every agent holds every record between two it holds from the period.
/// The last decision left out with its record ends the service's run early (no gap in its
/// chain), but an agent's record logged after it leaves a hole in the indexes.
#[test]
fn a_record_left_out_of_a_bundle_of_everything_is_a_gap() {
    let (key, honest) = three_decisions();
    let honest = with_agent_record(honest);
    verify_offline(&honest, &key, false).expect("the honest bundle verifies");
    let mut bundle = honest.clone();
    leave_out(&mut bundle, honest.decisions[2].request_id, true);
    let message = verify_offline(&bundle, &key, true)
        .expect_err("a record left out")
        .to_string();
    assert!(
        message.contains("record 2 is missing"),
        "the message does not name the missing record: {message}"
    );
    // A bundle scoped to agents holds only theirs: its indexes have holes by design.
    let mut scoped = honest.clone();
    scoped.agents = vec![key.address()];
    scoped.records.remove(1);
    scoped.records.remove(1);
    assert!(check_receive_times(&scoped).is_ok());
}

/// Fifth red-team review (Low-medium): a record's receive time (the server's clock) could be
/// at most 999 ms after the anchoring block's time (the chain's clock), so an honest server
/// a few seconds ahead of the chain failed its bundles. The tolerance is seconds.
#[test]
fn a_server_clock_seconds_ahead_of_the_chain_keeps_honest_bundles_valid() {
    let (_, honest) = three_decisions();
    let last = honest.records.last().expect("records").received_ms;
    let size = honest.records.len() as u64;
    // The chain's clock 5 s behind the server's at the anchoring.
    let anchored = [(size, last / 1000 - 5)];
    check_received_before_anchoring(&honest, &anchored)
        .expect("a receive time 5 s past the anchoring block's time is within the tolerance");
    let far = [(size, (last - RECEIVE_TIME_TOLERANCE_MS) / 1000 - 1)];
    assert!(
        check_received_before_anchoring(&honest, &far).is_err(),
        "a receive time past the anchoring by more than the tolerance passed"
    );
}
