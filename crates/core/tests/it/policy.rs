use alloy_primitives::U256;
use chaperone_core::{
    Address, Bytes, Call, Execute,
    policy::{
        Outcome, PastSpend, Policy, PolicyError, PolicyRequest, Reason, RequestKind, SpendHistory,
        Token, evaluate,
    },
};
use proptest::prelude::*;

const EXAMPLE: &str = include_str!("../../../../deploy/policy.example.toml");
const ETH: u64 = 1_000_000_000_000_000_000;
const TOKEN: &str = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const DEPOSIT_CONTRACT: &str = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512";
const NOW: u64 = 1_750_000_000;

fn eth(milli: u64) -> U256 {
    U256::from(milli) * U256::from(ETH / 1000)
}

fn policy() -> Policy {
    Policy::from_toml(EXAMPLE).unwrap()
}

fn token() -> Address {
    TOKEN.parse().unwrap()
}

fn request(calls: Vec<Call>) -> PolicyRequest {
    PolicyRequest {
        chain_id: 31337,
        wallet: Address::repeat_byte(0xaa),
        now: NOW,
        kind: RequestKind::Execute(Execute {
            calls,
            nonce: U256::ZERO,
            validUntil: NOW + 60,
        }),
        human_approved: false,
    }
}

/// A request decided at `now` whose co-signature stays usable for `valid_for` seconds.
fn request_at(calls: Vec<Call>, now: u64, valid_for: u64) -> PolicyRequest {
    PolicyRequest {
        now,
        kind: RequestKind::Execute(Execute {
            calls,
            nonce: U256::ZERO,
            validUntil: now + valid_for,
        }),
        ..request(vec![])
    }
}

fn pay(to: Address, value: U256) -> Call {
    Call {
        to,
        value,
        data: Bytes::new(),
    }
}

fn erc20(selector: &str, args: &[[u8; 32]]) -> Call {
    let mut data = alloy_primitives::keccak256(selector.as_bytes())[..4].to_vec();
    for a in args {
        data.extend_from_slice(a);
    }
    Call {
        to: token(),
        value: U256::ZERO,
        data: data.into(),
    }
}

fn addr_word(a: Address) -> [u8; 32] {
    a.into_word().0
}

fn amount_word(n: u64) -> [u8; 32] {
    U256::from(n).to_be_bytes()
}

fn bob() -> Address {
    Address::repeat_byte(0xb0)
}

#[test]
fn example_policy_parses_from_toml_and_json_alike() {
    let p = policy();
    assert_eq!(p.limits.len(), 2);
    assert_eq!(p.limit(Token::Native).unwrap().windows[1].window.0, 86_400);
    let json = serde_json::to_string(&p).unwrap();
    let back = Policy::from_json(&json).unwrap();
    assert_eq!(back, p);
    assert_eq!(back.hash(), p.hash());
    let mut other = p.clone();
    other.version = 2;
    assert_ne!(other.hash(), p.hash(), "the hash covers the whole policy");
}

#[test]
fn malformed_policies_are_refused_with_the_reason() {
    let unknown = EXAMPLE.replace("per_transaction", "per_transation");
    assert!(
        matches!(Policy::from_toml(&unknown), Err(PolicyError::Parse(m)) if m.contains("per_transation"))
    );
    let no_chains = EXAMPLE.replace("chains = [31337]", "chains = []");
    assert!(
        matches!(Policy::from_toml(&no_chains), Err(PolicyError::Invalid(m)) if m.contains("chains"))
    );
    let dup = EXAMPLE.replace(&format!("token = \"{TOKEN}\""), "token = \"native\"");
    assert!(matches!(Policy::from_toml(&dup), Err(PolicyError::Invalid(m)) if m.contains("two")));
    let bad_duration = EXAMPLE.replace("\"1h\"", "\"1 hour\"");
    assert!(
        matches!(Policy::from_toml(&bad_duration), Err(PolicyError::Parse(m)) if m.contains("duration"))
    );
    let bad_amount = EXAMPLE.replace("\"500000000000000000\"", "\"lots\"");
    assert!(Policy::from_toml(&bad_amount).is_err());
}

#[test]
fn native_payment_within_caps_is_approved_with_its_spend() {
    let d = evaluate(
        &policy(),
        &request(vec![pay(bob(), eth(100))]),
        &SpendHistory::default(),
    );
    assert_eq!(d.outcome, Outcome::Approved, "{:?}", d.reasons);
    assert!(d.sign);
    assert_eq!(d.spends, vec![(Token::Native, eth(100))]);
    assert_eq!(d.policy_hash, policy().hash());
}

#[test]
fn per_transaction_and_window_caps_deny_with_every_reason() {
    // 0.6 ETH: over the 0.5 per-transaction cap. With 0.5 already spent this hour, also over
    // the 1 ETH hourly window.
    let history = SpendHistory {
        spends: vec![PastSpend {
            token: Token::Native,
            amount: eth(500),
            at: NOW - 600,
            until: NOW - 600,
        }],
        ..Default::default()
    };
    let d = evaluate(&policy(), &request(vec![pay(bob(), eth(600))]), &history);
    assert_eq!(d.outcome, Outcome::Denied);
    assert!(!d.sign);
    assert!(
        d.reasons
            .iter()
            .any(|r| matches!(r, Reason::PerTransactionCap { .. }))
    );
    assert!(
        d.reasons
            .iter()
            .any(|r| matches!(r, Reason::WindowCap { window: 3600, .. }))
    );
}

#[test]
fn windows_slide() {
    let spent = |at| SpendHistory {
        spends: vec![PastSpend {
            token: Token::Native,
            amount: eth(900),
            at,
            until: at,
        }],
        ..Default::default()
    };
    let ask = request(vec![pay(bob(), eth(150))]);
    assert_eq!(
        evaluate(&policy(), &ask, &spent(NOW - 3599)).outcome,
        Outcome::Denied
    );
    assert_eq!(
        evaluate(&policy(), &ask, &spent(NOW - 3600)).outcome,
        Outcome::Approved
    );
}

#[test]
fn approvals_and_permits_count_as_spend() {
    let approve = erc20(
        "approve(address,uint256)",
        &[addr_word(bob()), amount_word(101_000_000)],
    );
    let d = evaluate(&policy(), &request(vec![approve]), &SpendHistory::default());
    assert_eq!(d.outcome, Outcome::Denied);
    assert!(matches!(
        d.reasons[0],
        Reason::PerTransactionCap {
            token: Token::Erc20(_),
            ..
        }
    ));

    let inc = erc20(
        "increaseAllowance(address,uint256)",
        &[addr_word(bob()), amount_word(60_000_000)],
    );
    let transfer = erc20(
        "transfer(address,uint256)",
        &[addr_word(bob()), amount_word(50_000_000)],
    );
    let d = evaluate(
        &policy(),
        &request(vec![inc, transfer]),
        &SpendHistory::default(),
    );
    assert_eq!(d.outcome, Outcome::Denied, "60 + 50 > 100 per transaction");
    assert_eq!(
        d.spends,
        vec![(Token::Erc20(token()), U256::from(110_000_000))]
    );

    let permit = erc20(
        "permit(address,address,uint256,uint256,uint8,bytes32,bytes32)",
        &[
            addr_word(Address::repeat_byte(0xaa)),
            addr_word(bob()),
            amount_word(500_000_000),
            [0; 32],
            [0; 32],
            [0; 32],
            [0; 32],
        ],
    );
    let d = evaluate(&policy(), &request(vec![permit]), &SpendHistory::default());
    assert!(
        d.reasons
            .iter()
            .any(|r| matches!(r, Reason::PerTransactionCap { .. })),
        "{:?}",
        d.reasons
    );
}

#[test]
fn undecodable_calls_need_an_allowed_contract_and_function() {
    let mut unknown = erc20("swap(uint256)", &[amount_word(1)]);
    let d = evaluate(
        &policy(),
        &request(vec![unknown.clone()]),
        &SpendHistory::default(),
    );
    assert!(
        matches!(d.reasons[..], [Reason::UndecodableCall { .. }]),
        "{:?}",
        d.reasons
    );

    unknown.to = DEPOSIT_CONTRACT.parse().unwrap();
    let d = evaluate(&policy(), &request(vec![unknown]), &SpendHistory::default());
    assert_eq!(
        d.outcome,
        Outcome::Denied,
        "allowed contract, function not allowed"
    );

    let mut deposit = erc20("deposit(uint256)", &[amount_word(1_000_000)]);
    deposit.to = DEPOSIT_CONTRACT.parse().unwrap();
    let d = evaluate(
        &policy(),
        &request(vec![deposit.clone()]),
        &SpendHistory::default(),
    );
    assert_eq!(d.outcome, Outcome::Approved, "{:?}", d.reasons);

    let mut too_big = erc20("deposit(uint256)", &[amount_word(1_000_001)]);
    too_big.to = deposit.to;
    let d = evaluate(&policy(), &request(vec![too_big]), &SpendHistory::default());
    assert!(matches!(
        d.reasons[..],
        [Reason::ArgumentRule { index: 0, .. }]
    ));

    // An ERC-20 call with a dirty address word is still a spend, to the address a masking
    // token reads (a validating one reverts): never an undecodable call a rule could allow.
    let mut dirty = addr_word(bob());
    dirty[0] = 1;
    let d = evaluate(
        &policy(),
        &request(vec![erc20(
            "transfer(address,uint256)",
            &[dirty, amount_word(1)],
        )]),
        &SpendHistory::default(),
    );
    assert_eq!(d.spends, vec![(Token::Erc20(token()), U256::from(1))]);
    assert!(
        matches!(&d.effects[..], [chaperone_core::policy::Effect::Spend { recipient, .. }] if *recipient == bob())
    );
}

#[test]
fn recipients_chains_tokens_and_rate_limits() {
    let dead: Address = "0x000000000000000000000000000000000000dEaD"
        .parse()
        .unwrap();
    let d = evaluate(
        &policy(),
        &request(vec![pay(dead, eth(1))]),
        &SpendHistory::default(),
    );
    assert!(matches!(d.reasons[..], [Reason::RecipientDenied { .. }]));

    let mut allow_only_bob = policy();
    allow_only_bob.recipients.allow = Some(vec![bob()]);
    let d = evaluate(
        &allow_only_bob,
        &request(vec![pay(Address::repeat_byte(3), eth(1))]),
        &SpendHistory::default(),
    );
    assert!(matches!(
        d.reasons[..],
        [Reason::RecipientNotAllowed { .. }]
    ));

    let mut other_chain = request(vec![pay(bob(), eth(1))]);
    other_chain.chain_id = 1;
    let d = evaluate(&policy(), &other_chain, &SpendHistory::default());
    assert!(matches!(
        d.reasons[..],
        [Reason::ChainNotAllowed { chain_id: 1 }]
    ));

    let mut stranger = erc20(
        "transfer(address,uint256)",
        &[addr_word(bob()), amount_word(1)],
    );
    stranger.to = Address::repeat_byte(0x77);
    let d = evaluate(
        &policy(),
        &request(vec![stranger]),
        &SpendHistory::default(),
    );
    assert!(matches!(d.reasons[..], [Reason::TokenNotAllowed { .. }]));

    let busy = SpendHistory {
        requests: vec![NOW - 30; 60],
        ..Default::default()
    };
    let d = evaluate(&policy(), &request(vec![pay(bob(), eth(1))]), &busy);
    assert!(matches!(
        d.reasons[..],
        [Reason::RateLimited {
            max_requests: 60,
            window: 60
        }]
    ));
}

#[test]
fn large_payments_wait_for_a_human_and_shadow_mode_never_signs() {
    let big = request(vec![pay(bob(), eth(300))]);
    let d = evaluate(&policy(), &big, &SpendHistory::default());
    assert_eq!(d.outcome, Outcome::PendingApproval);
    assert!(!d.sign);
    let approved = PolicyRequest {
        human_approved: true,
        ..big.clone()
    };
    assert_eq!(
        evaluate(&policy(), &approved, &SpendHistory::default()).outcome,
        Outcome::Approved
    );

    let mut shadow = policy();
    shadow.mode = chaperone_core::policy::Mode::Shadow;
    let d = evaluate(
        &shadow,
        &request(vec![pay(bob(), eth(1))]),
        &SpendHistory::default(),
    );
    assert_eq!(d.outcome, Outcome::Approved);
    assert!(!d.sign, "shadow mode decides but never signs");
    assert!(d.reasons.contains(&Reason::ShadowMode));
}

#[test]
fn eip3009_authorizations_are_spends_of_the_token() {
    let x402 = |value: u64, contract: Address| PolicyRequest {
        kind: RequestKind::TypedData {
            domain_name: Some("USD Coin".into()),
            domain_version: Some("2".into()),
            verifying_contract: contract,
            primary_type: "TransferWithAuthorization".into(),
            message: serde_json::json!({
                "from": "0x00000000000000000000000000000000000000aa",
                "to": bob().to_string(),
                "value": value.to_string(),
                "validAfter": "0", "validBefore": (NOW + 120).to_string(),
                "nonce": "0x00",
            }),
        },
        ..request(vec![])
    };
    assert_eq!(
        evaluate(
            &policy(),
            &x402(1_000_000, token()),
            &SpendHistory::default()
        )
        .outcome,
        Outcome::Approved
    );
    let d = evaluate(
        &policy(),
        &x402(200_000_000, token()),
        &SpendHistory::default(),
    );
    assert!(matches!(d.reasons[..], [Reason::PerTransactionCap { .. }]));
    let d = evaluate(
        &policy(),
        &x402(1, Address::repeat_byte(9)),
        &SpendHistory::default(),
    );
    assert!(
        d.reasons
            .iter()
            .any(|r| matches!(r, Reason::TypedDataNotAllowed { .. }))
    );
}

proptest! {
    /// Random sequences of requests, each approved one reserved into the history as the store
    /// does: no sliding window ever holds more than its cap, and no request exceeds its cap.
    #[test]
    fn random_requests_are_never_approved_beyond_any_cap(
        steps in proptest::collection::vec((0u64..700, 0u64..3000, 0usize..3), 1..60)
    ) {
        let p = policy();
        let native = p.limit(Token::Native).unwrap().clone();
        let mut history = SpendHistory::default();
        let mut now = NOW;
        for (milli, gap, calls) in steps {
            now += gap;
            let calls = (0..calls.max(1)).map(|_| pay(bob(), eth(milli))).collect();
            let mut r = request_at(calls, now, 60);
            r.human_approved = true;
            let d = evaluate(&p, &r, &history);
            history.requests.push(now);
            if d.outcome == Outcome::Approved {
                for (token, amount) in &d.spends {
                    history.spends.push(PastSpend { token: *token, amount: *amount, at: now, until: now + 60 });
                    prop_assert!(*amount <= native.per_transaction.unwrap().0);
                }
                for w in &native.windows {
                    prop_assert!(history.spent_within(Token::Native, now, w.window.0) <= w.max.0);
                }
            }
        }
    }
}
