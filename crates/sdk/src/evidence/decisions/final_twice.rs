//! Sixth red-team review of issue 29: a request has at most one final record.

use chaperone_core::policy::Outcome;

use super::tests::{service_chain, service_key, verify_offline};

/// A decision's records must be [pending]* then at most one final record. The verifier took
/// the LAST record without asking whether an earlier one was already final: a co-signed
/// approval followed by a denial (an admin set the row back to pending and the expiry task
/// ended it again) showed as denied, never signed, and verified.
#[test]
fn a_final_record_superseded_by_another_final_record_is_invalid() {
    let key = service_key();
    let cases: [(&str, &[(u64, Outcome)]); 3] = [
        (
            "approved (co-signed) then denied",
            &[(0, Outcome::Approved), (0, Outcome::Denied)],
        ),
        (
            "pending, denied by a human, then approved (co-signed)",
            &[
                (0, Outcome::PendingApproval),
                (0, Outcome::Denied),
                (0, Outcome::Approved),
            ],
        ),
        (
            "pending, approved (co-signed), then denied (expired)",
            &[
                (0, Outcome::PendingApproval),
                (0, Outcome::Approved),
                (0, Outcome::Denied),
            ],
        ),
    ];
    for (name, steps) in cases {
        let bundle = service_chain(&key, steps);
        let err = verify_offline(&bundle, &key, true)
            .err()
            .unwrap_or_else(|| panic!("{name}: two final records of one request verified"))
            .to_string();
        assert!(
            err.contains("a final decision was logged twice"),
            "{name}: {err}"
        );
    }
}

/// A request logged pending before migration 0020 and ended since: the store now keeps the
/// pending record's opening (store test `legacy_openings`), and the honest bundle verifies.
/// Without that opening the record cannot be tied to any request: the bundle stays INVALID
/// (it could as well be a decision left out), and the message names both cases.
#[test]
fn a_legacy_pending_record_verifies_with_its_kept_opening_and_not_without() {
    let key = service_key();
    let mut bundle = service_chain(&key, &[(0, Outcome::PendingApproval), (0, Outcome::Denied)]);
    let checked = verify_offline(&bundle, &key, false).expect("the honest bundle verifies");
    assert_eq!((checked.verified, checked.records_opened), (1, 2));
    let pending = bundle.records[0].leaf_hash;
    bundle.decision_openings.retain(|o| o.leaf_hash != pending);
    let err = verify_offline(&bundle, &key, true)
        .expect_err("an unopened decision record of the period is not accepted")
        .to_string();
    assert!(
        err.contains("a record of a decision shown, with no opening"),
        "{err}"
    );
}
