//! The running totals of spend windows against a brute-force count: a long random sequence of
//! approvals, releases, settlements (also of released spends), expiry passes, clocks going
//! back a little (another replica) and a policy that gains a window, on SQLite and PostgreSQL.
//! After every step, an over-cap probe is denied with each window's `spent`, which must equal
//! what the engine's own `spent_within` counts over every reservation one by one.

use chaperone_core::{
    B256, U256,
    policy::{Outcome, PastSpend, Policy, Reason, RequestKind, SpendHistory, Token},
};
use chaperone_store::{Store, StoredDecision, WalletRecord};

use crate::{
    attacks::decide_at,
    decisions::{NOW, pay, request, wallet},
    stores,
};

const WINDOWS: [u64; 3] = [600, 3_600, 86_400];

fn policy(version: u32, windows: &[u64]) -> Policy {
    let windows: Vec<String> = windows
        .iter()
        .map(|w| format!(r#"{{ window = "{w}s", max = "1000000000" }}"#))
        .collect();
    Policy::from_toml(&format!(
        "version = {version}\nchains = [31337]\n[[limits]]\ntoken = \"native\"\n\
         windows = [{}]\n",
        windows.join(", ")
    ))
    .unwrap()
}

/// A small deterministic generator: the sequence is the same on every run and backend.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Status {
    Reserved,
    Settled,
    Released,
}

struct Spend {
    id: B256,
    amount: u64,
    at: u64,
    until: u64,
    status: Status,
}

/// Decides a payment of `amount` at `now`, its co-signature usable until `until`.
async fn decide(store: &Store, nonce: u64, amount: u64, now: u64, until: u64) -> StoredDecision {
    let (_, mut req) = request(vec![pay(amount)], nonce, now);
    let RequestKind::Execute(execute) = &mut req.kind else {
        unreachable!("request() builds an Execute")
    };
    execute.validUntil = until;
    let id = execute.digest(31337, wallet());
    decide_at(store, id, &req, now, until, None).await
}

#[tokio::test]
async fn running_totals_equal_a_count_of_every_spend() {
    for store in stores().await {
        let record = WalletRecord {
            address: wallet(),
            chain_id: 31337,
            agent: chaperone_core::Address::repeat_byte(0xa9),
        };
        store.register_wallet(&record, NOW).await.unwrap();
        store
            .set_policy(wallet(), &policy(1, &WINDOWS[..2]), NOW)
            .await
            .unwrap();
        let mut windows = WINDOWS[..2].to_vec();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut spends: Vec<Spend> = Vec::new();
        let (mut now, mut nonce) = (NOW, 0);
        for step in 0..400 {
            // Mostly forward, sometimes a few seconds back (a replica whose clock lags).
            now = match rng.below(10) {
                0 => now - rng.below(5),
                _ => now + rng.below(240),
            };
            nonce += 1;
            match rng.below(6) {
                0..=2 => {
                    let (amount, until) = (1 + rng.below(1_000), now + 1 + rng.below(299));
                    let d = decide(&store, nonce, amount, now, until).await;
                    assert_eq!(d.outcome, Outcome::Approved, "step {step}: {:?}", d.reasons);
                    spends.push(Spend {
                        id: d.request_id,
                        amount,
                        at: now,
                        until,
                        status: Status::Reserved,
                    });
                }
                3 if !spends.is_empty() => {
                    let pick = rng.below(spends.len() as u64) as usize;
                    let s = &mut spends[pick];
                    let moved = store.release(s.id).await.unwrap();
                    assert_eq!(moved == 1, s.status == Status::Reserved, "step {step}");
                    if s.status == Status::Reserved {
                        s.status = Status::Released;
                    }
                }
                4 if !spends.is_empty() => {
                    // Settling also counts a released spend again: it happened after all.
                    let pick = rng.below(spends.len() as u64) as usize;
                    let s = &mut spends[pick];
                    let moved = store.settle(s.id).await.unwrap();
                    assert_eq!(moved == 1, s.status != Status::Settled, "step {step}");
                    s.status = Status::Settled;
                }
                _ => {
                    let confirmed = now - rng.below(120);
                    store.release_expired(confirmed).await.unwrap();
                    for s in spends.iter_mut() {
                        if s.status == Status::Reserved && s.until < confirmed {
                            s.status = Status::Released;
                        }
                    }
                }
            }
            if step == 200 {
                windows = WINDOWS.to_vec();
                store
                    .set_policy(wallet(), &policy(2, &windows), now)
                    .await
                    .unwrap();
            }

            let counted = SpendHistory {
                spends: spends
                    .iter()
                    .filter(|s| s.status != Status::Released)
                    .map(|s| PastSpend {
                        token: Token::Native,
                        amount: U256::from(s.amount),
                        at: s.at,
                        until: s.until,
                    })
                    .collect(),
                ..Default::default()
            };
            nonce += 1;
            let probe = decide(&store, nonce, 2_000_000_000, now, now + 60).await;
            assert_eq!(probe.outcome, Outcome::Denied);
            for &window in &windows {
                let expected = counted.spent_within(Token::Native, now, window);
                let spent = probe.reasons.iter().find_map(|r| match r {
                    Reason::WindowCap {
                        window: w, spent, ..
                    } if *w == window => Some(*spent),
                    _ => None,
                });
                assert_eq!(spent, Some(expected), "step {step}, window {window}s");
            }
        }
    }
}

/// Settlements and expiry passes (what the chain, and so an agent timing its executions,
/// drives) racing new decisions on the same wallet: a lost update of a running total would
/// uncount a spend and let the wallet overspend. After the race, the day window's `spent` must
/// equal the sum of every reservation not released.
#[tokio::test]
async fn running_totals_stay_exact_when_settlements_race_decisions() {
    for store in stores().await {
        let record = WalletRecord {
            address: wallet(),
            chain_id: 31337,
            agent: chaperone_core::Address::repeat_byte(0xa9),
        };
        store.register_wallet(&record, NOW).await.unwrap();
        store
            .set_policy(wallet(), &policy(1, &[86_400]), NOW)
            .await
            .unwrap();
        // 100 early spends, half of them expiring before the race's expiry pass.
        let mut early = Vec::new();
        for nonce in 0..100 {
            let until = NOW + if nonce % 2 == 0 { 5 } else { 200 };
            early.push(decide(&store, nonce, 1, NOW, until).await.request_id);
        }
        let mut race = tokio::task::JoinSet::new();
        for nonce in 100..300 {
            let store = store.clone();
            race.spawn(async move {
                let d = decide(&store, nonce, 1, NOW + 20, NOW + 80).await;
                assert_eq!(d.outcome, Outcome::Approved, "{:?}", d.reasons);
            });
        }
        for (i, id) in early.into_iter().enumerate() {
            let store = store.clone();
            race.spawn(async move {
                // Every third settles (an expired one is counted again); every 25th runs an
                // expiry pass at a confirmed time past the short co-signatures.
                if i % 3 == 0 {
                    store.settle(id).await.unwrap();
                }
                if i % 25 == 0 {
                    store.release_expired(NOW + 10).await.unwrap();
                }
            });
        }
        while let Some(done) = race.join_next().await {
            done.unwrap();
        }
        let committed = store
            .committed_spend(wallet(), Token::Native)
            .await
            .unwrap()
            .0;
        let probe = decide(&store, 1_000, 2_000_000_000, NOW + 20, NOW + 80).await;
        let spent = probe.reasons.iter().find_map(|r| match r {
            Reason::WindowCap { spent, .. } => Some(*spent),
            _ => None,
        });
        assert_eq!(
            spent,
            Some(committed),
            "the day window counts every spend not released"
        );
        assert!(
            committed > U256::from(200),
            "the race's approvals are in: {committed}"
        );
    }
}
