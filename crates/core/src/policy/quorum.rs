//! Counting human votes on a pending request: distinct approvers, one denial denies, and the
//! request is approved only once the quorum the policy asked for is reached.

/// One approver's vote as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vote {
    /// The approver's token name: one vote per name.
    pub approver: String,
    /// Approve (true) or deny.
    pub approve: bool,
}

/// Where a request stands after its votes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tally {
    /// Not enough approvers yet.
    Pending {
        /// The distinct approvers so far, in voting order.
        approved_by: Vec<String>,
        /// How many more distinct approvers are needed.
        remaining: u32,
    },
    /// The quorum is reached: the request may be co-signed.
    Approved {
        /// The distinct approvers, in voting order.
        approved_by: Vec<String>,
    },
    /// Someone denied it: a single "no" is final, whatever the others said.
    Denied {
        /// Who denied it first.
        denied_by: String,
    },
}

/// Counts `votes` (in the order they were cast) against `required` distinct approvers. A name
/// that votes twice counts once (its first vote stands); any denial denies; `required` below one
/// is taken as one.
pub fn tally(required: u32, votes: &[Vote]) -> Tally {
    let mut approved_by: Vec<String> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for vote in votes {
        if seen.contains(&vote.approver.as_str()) {
            continue;
        }
        seen.push(&vote.approver);
        if !vote.approve {
            return Tally::Denied {
                denied_by: vote.approver.clone(),
            };
        }
        approved_by.push(vote.approver.clone());
    }
    let have = u32::try_from(approved_by.len()).unwrap_or(u32::MAX);
    let required = required.max(1);
    if have >= required {
        Tally::Approved { approved_by }
    } else {
        Tally::Pending {
            approved_by,
            remaining: required - have,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    fn vote(approver: &str, approve: bool) -> Vote {
        Vote {
            approver: approver.to_owned(),
            approve,
        }
    }

    #[test]
    fn one_approver_suffices_without_a_quorum() {
        assert_eq!(
            tally(1, &[vote("desk", true)]),
            Tally::Approved {
                approved_by: vec!["desk".into()]
            }
        );
    }

    #[test]
    fn no_approval_before_the_quorum_is_reached() {
        assert_eq!(
            tally(3, &[vote("alice", true), vote("bob", true)]),
            Tally::Pending {
                approved_by: vec!["alice".into(), "bob".into()],
                remaining: 1
            }
        );
        assert_eq!(
            tally(2, &[]),
            Tally::Pending {
                approved_by: vec![],
                remaining: 2
            }
        );
    }

    #[test]
    fn the_same_approver_twice_counts_once() {
        assert_eq!(
            tally(2, &[vote("alice", true), vote("alice", true)]),
            Tally::Pending {
                approved_by: vec!["alice".into()],
                remaining: 1
            }
        );
        // A second vote by the same name cannot turn its approval into a denial either: the
        // first vote stands.
        assert!(matches!(
            tally(2, &[vote("alice", true), vote("alice", false)]),
            Tally::Pending { remaining: 1, .. }
        ));
    }

    #[test]
    fn one_denial_denies_whatever_the_others_say() {
        let votes = [vote("alice", true), vote("bob", false), vote("carol", true)];
        assert_eq!(
            tally(2, &votes),
            Tally::Denied {
                denied_by: "bob".into()
            }
        );
        assert_eq!(
            tally(1, &[vote("bob", false)]),
            Tally::Denied {
                denied_by: "bob".into()
            }
        );
    }

    #[test]
    fn the_quorum_applies_only_above_its_threshold() {
        let policy = Policy::from_toml(
            r#"
            version = 1
            chains = [1]
            [[limits]]
            token = "native"
            per_transaction = "10000"
            [approval]
            expires_after = "10m"
            above = [{ token = "native", amount = "100" }]
            quorum = { approvers = 2, above = [{ token = "native", amount = "1000" }] }
            "#,
        )
        .expect("a policy with a quorum parses");
        let rule = policy.approval.as_ref().expect("an approval rule");
        let native = crate::policy::Token::Native;
        let spend = |amount: u64| [(native, alloy_primitives::U256::from(amount))];
        assert_eq!(rule.approvers_required(&spend(500)), 1);
        assert_eq!(rule.approvers_required(&spend(1000)), 1);
        assert_eq!(rule.approvers_required(&spend(1001)), 2);
    }

    #[test]
    fn a_quorum_that_could_never_be_asked_is_refused() {
        let policy = |quorum: &str| {
            Policy::from_toml(&format!(
                r#"
                version = 1
                chains = [1]
                [[limits]]
                token = "native"
                per_transaction = "10000"
                [approval]
                expires_after = "10m"
                above = [{{ token = "native", amount = "100" }}]
                quorum = {quorum}
                "#
            ))
        };
        // Below the single-approver threshold, a quorum would never be asked.
        assert!(
            policy(r#"{ approvers = 2, above = [{ token = "native", amount = "50" }] }"#).is_err()
        );
        assert!(
            policy(r#"{ approvers = 1, above = [{ token = "native", amount = "500" }] }"#).is_err()
        );
        assert!(
            policy(r#"{ approvers = 17, above = [{ token = "native", amount = "500" }] }"#)
                .is_err()
        );
        assert!(policy(r#"{ approvers = 2, above = [] }"#).is_err());
        assert!(
            policy(r#"{ approvers = 2, above = [{ token = "native", amount = "500" }] }"#).is_ok()
        );
    }
}
