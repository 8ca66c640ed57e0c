//! Attacker A (the agent key alone) against the engine: each test is an attack the outside
//! review found, asserting the engine refuses it.

use alloy_primitives::U256;
use chaperone_core::{
    Address, Bytes, Call, Execute,
    policy::{
        Outcome, PastSpend, Policy, PolicyRequest, Reason, RequestKind, SpendHistory, Token,
        evaluate,
    },
};
use proptest::prelude::*;

const NOW: u64 = 1_750_000_000;
const TOKEN: &str = "0x5FbDB2315678afecb367f032d93F642f64180aa3";

fn policy(extra: &str) -> Policy {
    Policy::from_toml(&format!(
        r#"
version = 1
chains = [31337]
{extra}

[[limits]]
token = "native"
per_transaction = "100"
windows = [{{ window = "1h", max = "100" }}]

[[limits]]
token = "{TOKEN}"
per_transaction = "100"
windows = [{{ window = "1h", max = "100" }}]

[[contracts]]
address = "{TOKEN}"
functions = [{{ function = "transfer(address,uint256)" }}, {{ function = "swap(uint256)" }}]

[[typed_data]]
primary_type = "TransferWithAuthorization"
"#
    ))
    .unwrap()
}

fn token() -> Address {
    TOKEN.parse().unwrap()
}

fn bob() -> Address {
    Address::repeat_byte(0xb0)
}

fn execute(now: u64, valid_until: u64, calls: Vec<Call>) -> PolicyRequest {
    PolicyRequest {
        chain_id: 31337,
        wallet: Address::repeat_byte(0xaa),
        now,
        kind: RequestKind::Execute(Execute {
            calls,
            nonce: U256::ZERO,
            validUntil: valid_until,
        }),
        human_approved: false,
    }
}

fn pay(value: u64) -> Call {
    Call {
        to: bob(),
        value: U256::from(value),
        data: Bytes::new(),
    }
}

fn authorization(now: u64, value: u64, valid_after: &str, valid_before: &str) -> PolicyRequest {
    PolicyRequest {
        kind: RequestKind::TypedData {
            domain_name: None,
            domain_version: None,
            verifying_contract: token(),
            primary_type: "TransferWithAuthorization".into(),
            message: serde_json::json!({
                "from": "0x00000000000000000000000000000000000000aa",
                "to": bob().to_string(),
                "value": value.to_string(),
                "validAfter": valid_after,
                "validBefore": valid_before,
                "nonce": "0x00",
            }),
        },
        ..execute(now, 0, vec![])
    }
}

fn transfer_calldata(amount: u64) -> Vec<u8> {
    let mut data = alloy_primitives::keccak256(b"transfer(address,uint256)")[..4].to_vec();
    data.extend_from_slice(&bob().into_word().0);
    data.extend_from_slice(&U256::from(amount).to_be_bytes::<32>());
    data
}

fn has(reasons: &[Reason], f: impl Fn(&Reason) -> bool) -> bool {
    reasons.iter().any(f)
}

/// Stockpiling, first half: a co-signature with a far expiry is refused, for `execute` and for
/// EIP-3009 alike (the service once co-signed `validBefore` = 2^200).
#[test]
fn far_expiries_are_refused() {
    let p = policy("");
    assert_eq!(p.max_valid_for(), 300, "default: 5 minutes");
    let d = evaluate(
        &p,
        &execute(NOW, NOW + 10 * 86_400, vec![pay(1)]),
        &SpendHistory::default(),
    );
    assert_eq!(d.outcome, Outcome::Denied);
    assert!(has(
        &d.reasons,
        |r| matches!(r, Reason::ValidTooLong { max_valid_until, .. } if *max_valid_until == NOW + 300)
    ));
    let far = (U256::from(1u8) << 200usize).to_string();
    let d = evaluate(
        &p,
        &authorization(NOW, 1, "0", &far),
        &SpendHistory::default(),
    );
    assert!(
        has(&d.reasons, |r| matches!(r, Reason::ValidTooLong { .. })),
        "{:?}",
        d.reasons
    );
    // Within the bound, both pass.
    let d = evaluate(
        &p,
        &execute(NOW, NOW + 300, vec![pay(1)]),
        &SpendHistory::default(),
    );
    assert_eq!(d.outcome, Outcome::Approved, "{:?}", d.reasons);
    let before = (NOW + 301).to_string();
    let d = evaluate(
        &p,
        &authorization(NOW, 1, "0", &before),
        &SpendHistory::default(),
    );
    assert_eq!(d.outcome, Outcome::Approved, "{:?}", d.reasons);
}

/// An authorization that becomes valid only later could be kept for a later window.
#[test]
fn future_valid_after_is_refused() {
    let before = (NOW + 200).to_string();
    let d = evaluate(
        &policy(""),
        &authorization(NOW, 1, &(NOW + 100).to_string(), &before),
        &SpendHistory::default(),
    );
    assert!(has(&d.reasons, |r| matches!(r, Reason::NotYetValid { .. })));
    let d = evaluate(
        &policy(""),
        &execute(NOW, NOW - 1, vec![pay(1)]),
        &SpendHistory::default(),
    );
    assert!(has(&d.reasons, |r| matches!(r, Reason::Expired { .. })));
}

/// `max_valid_for` may never exceed the shortest window.
#[test]
fn max_valid_for_longer_than_a_window_is_invalid() {
    let err = Policy::from_toml(
        "version = 1\nchains = [1]\nmax_valid_for = \"2h\"\n[[limits]]\ntoken = \"native\"\nwindows = [{ window = \"1h\", max = \"1\" }]\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("shortest window"), "{err}");
    assert_eq!(policy("max_valid_for = \"1m\"").max_valid_for(), 60);
}

/// Stockpiling, second half: an unsettled reservation counts in every window that overlaps
/// the span in which its co-signature can be used, not only in the window of its creation.
#[test]
fn a_reservation_counts_in_every_window_its_signature_can_reach() {
    let p = policy("");
    let history = SpendHistory {
        spends: vec![PastSpend {
            token: Token::Native,
            amount: U256::from(100),
            at: NOW,
            until: NOW + 300,
        }],
        ..Default::default()
    };
    // One hour later the creation is out of the window, but the signature was usable until
    // NOW + 300: a window ending before NOW + 3900 can still hold its spend.
    let later = NOW + 3_600 + 100;
    let d = evaluate(&p, &execute(later, later + 60, vec![pay(1)]), &history);
    assert!(
        has(&d.reasons, |r| matches!(r, Reason::WindowCap { .. })),
        "{:?}",
        d.reasons
    );
    let free = NOW + 300 + 3_600;
    let d = evaluate(&p, &execute(free, free + 60, vec![pay(100)]), &history);
    assert_eq!(d.outcome, Outcome::Approved, "{:?}", d.reasons);
}

/// Padded calldata: one extra byte after a `transfer` used to make it "undecodable", which the
/// contract rule for the token then allowed with no cap. Now it is a spend at any length.
#[test]
fn padded_spend_calldata_is_still_a_spend() {
    let p = policy("");
    for padding in [1usize, 31, 32, 100] {
        let mut data = transfer_calldata(1_000_000);
        data.extend(std::iter::repeat_n(0xee, padding));
        let call = Call {
            to: token(),
            value: U256::ZERO,
            data: data.into(),
        };
        let d = evaluate(
            &p,
            &execute(NOW, NOW + 60, vec![call]),
            &SpendHistory::default(),
        );
        assert_eq!(d.outcome, Outcome::Denied, "padding {padding}");
        assert!(has(&d.reasons, |r| matches!(
            r,
            Reason::PerTransactionCap { .. }
        )));
        assert_eq!(
            d.spends,
            vec![(Token::Erc20(token()), U256::from(1_000_000))]
        );
    }
}

/// Short spend calldata counts as unlimited (as the wallet counts it); dirty address padding
/// pays the low 20 bytes (what a masking token reads), so recipient rules still see it.
#[test]
fn short_or_dirty_spend_calldata_cannot_hide_an_amount() {
    let p = policy("");
    let mut short = transfer_calldata(1);
    short.truncate(4 + 32 + 5);
    let call = Call {
        to: token(),
        value: U256::ZERO,
        data: short.into(),
    };
    let d = evaluate(
        &p,
        &execute(NOW, NOW + 60, vec![call]),
        &SpendHistory::default(),
    );
    assert_eq!(d.spends, vec![(Token::Erc20(token()), U256::MAX)]);
    assert_eq!(d.outcome, Outcome::Denied);

    let mut dirty = transfer_calldata(1);
    dirty[4] = 0xff;
    let p = policy("[recipients]\ndeny = [\"0xb0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0\"]");
    let call = Call {
        to: token(),
        value: U256::ZERO,
        data: dirty.into(),
    };
    let d = evaluate(
        &p,
        &execute(NOW, NOW + 60, vec![call]),
        &SpendHistory::default(),
    );
    assert!(
        has(&d.reasons, |r| matches!(r, Reason::RecipientDenied { .. })),
        "{:?}",
        d.reasons
    );
}

/// Argument rules hold at every calldata length: an opaque call too short for its ruled
/// argument breaks the rule.
#[test]
fn argument_rules_are_checked_on_every_length() {
    let p = Policy::from_toml(&format!(
        "version = 1\nchains = [31337]\n[[contracts]]\naddress = \"{TOKEN}\"\nfunctions = [{{ function = \"swap(uint256)\", args = [{{ index = 0, max = \"10\" }}] }}]\n"
    ))
    .unwrap();
    let selector = alloy_primitives::keccak256(b"swap(uint256)")[..4].to_vec();
    for (data, ok) in [
        (
            [
                selector.clone(),
                U256::from(10).to_be_bytes::<32>().to_vec(),
            ]
            .concat(),
            true,
        ),
        (
            [
                selector.clone(),
                U256::from(11).to_be_bytes::<32>().to_vec(),
            ]
            .concat(),
            false,
        ),
        ([selector.clone(), vec![0; 31]].concat(), false),
        (
            [
                selector.clone(),
                U256::from(10).to_be_bytes::<32>().to_vec(),
                vec![1],
            ]
            .concat(),
            true,
        ),
    ] {
        let call = Call {
            to: token(),
            value: U256::ZERO,
            data: data.into(),
        };
        let d = evaluate(
            &p,
            &execute(NOW, NOW + 60, vec![call]),
            &SpendHistory::default(),
        );
        assert_eq!(d.outcome == Outcome::Approved, ok, "{:?}", d.reasons);
    }
}

/// What the property test drives.
#[derive(Debug, Clone)]
enum Step {
    /// Ask for a payment of `amount` whose co-signature is usable for `valid_for` seconds.
    Request {
        amount: u64,
        valid_for: u64,
        gap: u64,
    },
    /// The oldest live approval executes (settles): it keeps counting.
    Settle,
    /// Expired approvals that never executed are released.
    Expire,
    /// The owner installs a policy with another window cap.
    Tighten { cap: u64 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1u64..120, 0u64..400, 0u64..900).prop_map(|(amount, valid_for, gap)| Step::Request { amount, valid_for, gap }),
        1 => Just(Step::Settle),
        1 => Just(Step::Expire),
        1 => (50u64..200).prop_map(|cap| Step::Tighten { cap }),
    ]
}

proptest! {
    /// Random sequences of requests, settlements, expiries and policy changes: for every
    /// approval, every window of the policy that approved it, ending at any moment the
    /// approval's co-signature is usable, holds no more live co-signed value than its cap.
    #[test]
    fn live_cosigned_value_never_exceeds_any_window(steps in proptest::collection::vec(step(), 1..80)) {
        let mut p = policy("");
        let mut now = NOW;
        let mut live: Vec<PastSpend> = Vec::new();
        let mut settled = 0usize;
        for s in steps {
            match s {
                Step::Request { amount, valid_for, gap } => {
                    now += gap;
                    let history = SpendHistory { spends: live.clone(), ..Default::default() };
                    let d = evaluate(&p, &execute(now, now + valid_for, vec![pay(amount)]), &history);
                    if d.outcome != Outcome::Approved {
                        continue;
                    }
                    let until = now + valid_for;
                    live.push(PastSpend { token: Token::Native, amount: U256::from(amount), at: now, until });
                    let cap = p.limit(Token::Native).unwrap().windows[0].max.0;
                    let window = 3_600;
                    for end in [now, now + valid_for / 2, until, until + window / 2, until + window - 1] {
                        let since = end.saturating_sub(window);
                        let reachable: U256 = live
                            .iter()
                            .filter(|l| l.at <= now && l.until > since && l.at <= end)
                            .map(|l| l.amount)
                            .sum();
                        prop_assert!(reachable <= cap, "window ending {end}: {reachable} > {cap}");
                    }
                }
                Step::Settle => settled = (settled + 1).min(live.len()),
                Step::Expire => {
                    // Only approvals past their last usable second that never executed go.
                    let mut i = 0;
                    live.retain(|l| {
                        i += 1;
                        i <= settled || l.until >= now
                    });
                    settled = settled.min(live.len());
                }
                Step::Tighten { cap } => {
                    p = policy("");
                    p.limits[0].windows[0].max.0 = U256::from(cap);
                }
            }
        }
    }
}
