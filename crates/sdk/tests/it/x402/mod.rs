//! `X402Client` against merchants that attack it (issue 27, items 4–6): a real Anvil, a real
//! policy service, and merchants served from this test on real sockets, which settle (or not)
//! through the real token, Permit2 and x402 proxy as a facilitator would.

use std::sync::{Arc, Mutex};

use alloy::{
    providers::{DynProvider, Provider},
    rpc::types::TransactionRequest,
    sol_types::{SolCall, SolValue},
};
use chaperone_chain::{
    AgentWallet, Devnet, MULTICALL3, Multicall3, NewWallet, TestToken, WalletStart,
    X402ExactPermit2Proxy, deploy, install_x402_contracts, x402_proxy,
};
use chaperone_core::{Address, B256, Bytes, PERMIT2, Secp256k1Signer, U256, X402_PERMIT2_PROXY};
use chaperone_sdk::{Counterfactual, Error, Wallet, WalletConfig, X402Client, X402Payment};
use chaperone_server::WalletConfig as Registered;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use x402_types::util::Base64Bytes;

use chaperone_testkit::{devnet, listen, private_file, provider};

use crate::Server;

/// What one request carried, as the merchant saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    /// The payment header's value, if any (`Payment-Signature` or `X-Payment`).
    payment: Option<String>,
}

/// The price of everything here, in the token's base units.
const PRICE: u64 = 10;

/// How a merchant's route answers.
#[derive(Debug, Clone)]
enum Route {
    /// 402 until paid; then, per `on_payment`.
    Paid {
        method: &'static str,
        on_payment: OnPayment,
    },
    /// A redirect (302) to `to`, with or without a payment.
    Redirect { to: String },
}

/// What a merchant does with a payment it receives.
#[derive(Debug, Clone)]
enum OnPayment {
    /// Settles it through the chain and serves the content with the transaction.
    Settle,
    /// Does not settle it, but reports `tx` as its settlement and serves the content.
    Report(B256),
    /// Keeps it (unsettled) and answers 402 again.
    Refuse,
    /// Answers 307 to another URL (the client would re-send the payment there).
    RedirectTo(String),
}

/// A route paid by `method` (`eip3009` or `permit2`).
fn paid(method: &'static str, on_payment: OnPayment) -> Route {
    Route::Paid { method, on_payment }
}

/// A merchant on a port of its own: its routes by path, and every request it received.
struct Merchant {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// The settlements it made, in order.
    settled: Arc<Mutex<Vec<B256>>>,
}

impl Merchant {
    async fn start(shop: &Shop, routes: Vec<(&'static str, Route)>) -> Self {
        let (listener, base) = listen().await;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let settled = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(MerchantState {
            base: base.clone(),
            routes,
            facilitator: shop.facilitator.clone(),
            token: shop.token,
            pay_to: shop.pay_to,
            seen: Arc::clone(&seen),
            settled: Arc::clone(&settled),
        });
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let state = Arc::clone(&state);
                tokio::spawn(async move { state.serve(stream).await });
            }
        });
        Self {
            base,
            seen,
            settled,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The transactions it settled, in order.
    fn settled(&self) -> Vec<B256> {
        self.settled.lock().unwrap().clone()
    }

    /// The payment headers it received, in order.
    fn payments(&self) -> Vec<String> {
        self.seen().into_iter().filter_map(|s| s.payment).collect()
    }
}

struct MerchantState {
    base: String,
    routes: Vec<(&'static str, Route)>,
    facilitator: DynProvider,
    token: Address,
    pay_to: Address,
    seen: Arc<Mutex<Vec<Seen>>>,
    settled: Arc<Mutex<Vec<B256>>>,
}

/// A response: status, headers, body.
type Answer = (u16, Vec<(String, String)>, String);

impl MerchantState {
    async fn serve(&self, mut stream: TcpStream) {
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 4096];
        while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            buffer.extend_from_slice(&chunk[..n]);
        }
        let head = String::from_utf8_lossy(&buffer).to_string();
        let mut lines = head.split("\r\n");
        let path = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or("/")
            .to_owned();
        let payment = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(name, _)| {
                name.eq_ignore_ascii_case("payment-signature")
                    || name.eq_ignore_ascii_case("x-payment")
            })
            .map(|(_, value)| value.trim().to_owned());
        self.seen.lock().unwrap().push(Seen {
            path: path.clone(),
            payment: payment.clone(),
        });
        let (status, headers, body) = self.answer(&path, payment).await;
        let mut response = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
        for (name, value) in headers {
            response.push_str(&format!("{name}: {value}\r\n"));
        }
        response.push_str("Connection: close\r\n\r\n");
        response.push_str(&body);
        stream.write_all(response.as_bytes()).await.ok();
        stream.shutdown().await.ok();
    }

    async fn answer(&self, path: &str, payment: Option<String>) -> Answer {
        let Some((_, route)) = self.routes.iter().find(|(p, _)| *p == path) else {
            return (404, vec![], "no such route".into());
        };
        match route {
            Route::Redirect { to } => (302, vec![("Location".into(), to.clone())], String::new()),
            Route::Paid { method, on_payment } => match payment {
                None => self.payment_required(path, method),
                Some(header) => self.on_payment(path, method, on_payment, &header).await,
            },
        }
    }

    /// 402 with x402 v2 requirements for `method` (`eip3009` or `permit2`).
    fn payment_required(&self, path: &str, method: &str) -> Answer {
        let extra = match method {
            "permit2" => {
                json!({ "assetTransferMethod": "permit2", "name": "Test Token", "version": "1" })
            }
            _ => json!({ "name": "Test Token", "version": "1" }),
        };
        let required = json!({
            "x402Version": 2,
            "resource": { "url": format!("{}{path}", self.base) },
            "accepts": [{
                "scheme": "exact", "network": "eip155:31337", "amount": PRICE.to_string(),
                "payTo": self.pay_to, "maxTimeoutSeconds": 60, "asset": self.token, "extra": extra,
            }],
            // The x402 `payment-identifier` extension: a retried payment is recognised.
            "extensions": { "payment-identifier": { "info": { "required": false } } },
        });
        let header = Base64Bytes::encode(serde_json::to_vec(&required).unwrap()).to_string();
        (402, vec![("Payment-Required".into(), header)], "{}".into())
    }

    async fn on_payment(
        &self,
        path: &str,
        method: &str,
        on_payment: &OnPayment,
        header: &str,
    ) -> Answer {
        let settle = |tx: B256| {
            let response = json!({
                "success": true, "transaction": tx, "network": "eip155:31337",
                "payer": payer_of(header),
            });
            let header = Base64Bytes::encode(serde_json::to_vec(&response).unwrap()).to_string();
            (
                200,
                vec![("Payment-Response".into(), header)],
                "{\"forecast\": \"sunny\"}".to_owned(),
            )
        };
        match on_payment {
            OnPayment::Settle => match settle_on_chain(&self.facilitator, self.token, header).await
            {
                Ok(tx) => {
                    self.settled.lock().unwrap().push(tx);
                    settle(tx)
                }
                Err(e) => (402, vec![], format!("settlement failed: {e}")),
            },
            OnPayment::Report(tx) => settle(*tx),
            OnPayment::Refuse => self.payment_required(path, method),
            OnPayment::RedirectTo(to) => {
                (307, vec![("Location".into(), to.clone())], String::new())
            }
        }
    }
}

/// The payment header's JSON.
fn decode_header(header: &str) -> Value {
    let bytes = Base64Bytes::from(header.as_bytes()).decode().unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn payer_of(header: &str) -> Value {
    let payload = &decode_header(header)["payload"];
    let eip3009 = &payload["authorization"]["from"];
    if eip3009.is_null() {
        payload["permit2Authorization"]["from"].clone()
    } else {
        eip3009.clone()
    }
}

/// A JSON number, or a decimal or 0x-hex string, as a U256.
fn u256(value: &Value) -> U256 {
    match value {
        Value::Number(n) => U256::from(n.as_u64().unwrap()),
        Value::String(s) if s.starts_with("0x") => s.parse().unwrap(),
        Value::String(s) => U256::from_str_radix(s, 10).unwrap(),
        other => panic!("not a number: {other}"),
    }
}

fn address(value: &Value) -> Address {
    value.as_str().unwrap().parse().unwrap()
}

/// The calls a facilitator makes to settle a payment header: EIP-3009 through the token,
/// Permit2 through the x402 proxy; first the factory call of an ERC-6492 signature (which
/// deploys the wallet), and then the wallet's own signature.
fn settlement_calls(token: Address, header: &str) -> Vec<(Address, Bytes)> {
    let payload = &decode_header(header)["payload"];
    let signature: Bytes = payload["signature"].as_str().unwrap().parse().unwrap();
    let mut calls = Vec::new();
    let signature = match signature.strip_suffix(&[0x64, 0x92].repeat(16)[..]) {
        Some(wrapped) => {
            let (factory, deploy, inner) =
                <(Address, Bytes, Bytes)>::abi_decode_params(wrapped).unwrap();
            calls.push((factory, deploy));
            inner
        }
        None => signature,
    };
    if let Some(a) = payload.get("authorization") {
        let call = TestToken::transferWithAuthorizationCall {
            from: address(&a["from"]),
            to: address(&a["to"]),
            value: u256(&a["value"]),
            validAfter: u256(&a["validAfter"]),
            validBefore: u256(&a["validBefore"]),
            nonce: B256::from(u256(&a["nonce"])),
            signature,
        };
        calls.push((token, call.abi_encode().into()));
        return calls;
    }
    let p = &payload["permit2Authorization"];
    let call = X402ExactPermit2Proxy::settleCall {
        permit: x402_proxy::Permit2::PermitTransferFrom {
            permitted: x402_proxy::Permit2::TokenPermissions {
                token: address(&p["permitted"]["token"]),
                amount: u256(&p["permitted"]["amount"]),
            },
            nonce: u256(&p["nonce"]),
            deadline: u256(&p["deadline"]),
        },
        owner: address(&p["from"]),
        witness: x402_proxy::X402ExactPermit2Proxy::Witness {
            to: address(&p["witness"]["to"]),
            validAfter: u256(&p["witness"]["validAfter"]),
        },
        signature,
    };
    calls.push((X402_PERMIT2_PROXY, call.abi_encode().into()));
    calls
}

/// Settles a payment header as a facilitator would. Returns the transaction.
async fn settle_on_chain(
    facilitator: &DynProvider,
    token: Address,
    header: &str,
) -> Result<B256, String> {
    let calls = settlement_calls(token, header);
    match &calls[..] {
        [(to, input)] => send(facilitator, *to, input.clone()).await,
        _ => send(facilitator, MULTICALL3, batch(calls, false)).await,
    }
}

/// A Multicall3 `aggregate3` of `calls`, each allowed to fail or not.
fn batch(calls: Vec<(Address, Bytes)>, allow_failure: bool) -> Bytes {
    let calls = calls
        .into_iter()
        .map(|(target, call_data)| Multicall3::Call3 {
            target,
            allowFailure: allow_failure,
            callData: call_data,
        })
        .collect();
    Multicall3::aggregate3Call { calls }.abi_encode().into()
}

/// Sends `input` to `to`; the transaction, if it succeeded.
async fn send(from: &DynProvider, to: Address, input: Bytes) -> Result<B256, String> {
    // A fixed gas limit: an estimate for a batch that tolerates failures may starve the
    // calls it is meant to make.
    let tx = TransactionRequest::default()
        .to(to)
        .input(input.into())
        .gas_limit(3_000_000);
    let receipt = from
        .send_transaction(tx)
        .await
        .map_err(|e| e.to_string())?
        .get_receipt()
        .await
        .map_err(|e| e.to_string())?;
    if !receipt.status() {
        return Err(format!("{} reverted", receipt.transaction_hash));
    }
    Ok(receipt.transaction_hash)
}

/// A devnet with the x402 contracts, a token, an agent's wallet that may pay it by EIP-3009
/// and Permit2 (budget: 100 per authorization, 8 a period), a policy service that co-signs
/// up to 100 a payment, and a facilitator account.
struct Shop {
    devnet: Devnet,
    provider: DynProvider,
    facilitator: DynProvider,
    token: Address,
    wallet: Address,
    agent: Secp256k1Signer,
    /// The policy service's co-signer.
    cosigner: Address,
    pay_to: Address,
    payer: Wallet,
    _server: Server,
}

impl Shop {
    async fn open() -> Self {
        Self::open_with(false).await
    }

    /// With `counterfactual`, the wallet is a payment wallet not deployed yet: its first
    /// payment carries the factory call (ERC-6492).
    async fn open_with(counterfactual: bool) -> Self {
        let devnet = devnet();
        let (provider, facilitator) = (provider(&devnet, 0), provider(&devnet, 1));
        install_x402_contracts(&provider).await.unwrap();
        let deployment = deploy(&provider).await.unwrap();
        let (agent, cosigner) = (
            Secp256k1Signer::random().unwrap(),
            Secp256k1Signer::random().unwrap(),
        );
        let token = *TestToken::deploy(&provider).await.unwrap().address();
        let owner = devnet.signer(0).address();
        // Either way: a backstop of 10,000 a day, 8 authorizations of at most 100.
        let (wallet, counterfactual) = if counterfactual {
            let c = Counterfactual {
                factory: deployment.wallet_factory,
                owner,
                cosigner: cosigner.address(),
                salt: B256::ZERO,
                token,
                limit: U256::from(10_000),
                period: 86_400,
                max_value: U256::from(100),
                slots: 8,
                permit2_slots: 8,
            };
            (
                c.address(&provider, agent.address()).await.unwrap(),
                Some(c),
            )
        } else {
            let wallet = NewWallet {
                factory: deployment.wallet_factory,
                owner,
                agent: agent.address(),
                cosigner: cosigner.address(),
                salt: B256::ZERO,
                start: WalletStart::Bare,
            }
            .create(&provider)
            .await
            .unwrap();
            let contract = AgentWallet::new(wallet, &provider);
            for call in [
                contract
                    .setBackstop(token, U256::from(10_000), 86_400)
                    .send()
                    .await,
                contract
                    .setAuthorizationBudget(token, U256::from(100), 8, 8)
                    .send()
                    .await,
            ] {
                call.unwrap().watch().await.unwrap();
            }
            (wallet, None)
        };
        TestToken::new(token, &provider)
            .mint(wallet, U256::from(10_000))
            .send()
            .await
            .unwrap()
            .watch()
            .await
            .unwrap();
        let policy = private_file("policy").with_extension("toml");
        std::fs::write(
            &policy,
            format!(
                r#"version = 1
mode = "enforce"
chains = [31337]
[[limits]]
token = "{token}"
per_transaction = "100"
[[typed_data]]
primary_type = "TransferWithAuthorization"
verifying_contract = "{token}"
[[typed_data]]
primary_type = "PermitWitnessTransferFrom"
verifying_contract = "{PERMIT2}"
"#
            ),
        )
        .unwrap();
        let rpc_url = devnet.rpc_url();
        let cosigner_address = cosigner.address();
        let server = Server::start_with(0, None, cosigner, |config| {
            config.rpc_url = Some(rpc_url.clone());
            config.wallets = vec![Registered {
                address: wallet,
                agent: agent.address(),
                policy: policy.clone(),
            }];
        })
        .await;
        let mut config = WalletConfig::new(&server.url, devnet.rpc_url(), wallet);
        config.counterfactual = counterfactual;
        let payer = Wallet::connect(config, agent.clone()).await.unwrap();
        Self {
            provider,
            facilitator,
            token,
            wallet,
            agent,
            cosigner: cosigner_address,
            pay_to: Address::repeat_byte(0x42),
            payer,
            devnet,
            _server: server,
        }
    }

    /// Moves chain time `seconds` ahead and mines a block there.
    async fn travel(&self, seconds: u64) {
        self.provider
            .raw_request::<_, serde_json::Value>("evm_increaseTime".into(), (seconds,))
            .await
            .unwrap();
        self.provider
            .raw_request::<_, serde_json::Value>("evm_mine".into(), ())
            .await
            .unwrap();
    }

    fn client(&self) -> X402Client {
        X402Client::new(self.payer.clone())
    }

    async fn balance(&self, of: Address) -> U256 {
        TestToken::new(self.token, &self.provider)
            .balanceOf(of)
            .call()
            .await
            .unwrap()
    }

    /// Moves `amount` of the token from the facilitator's account (not the wallet) to
    /// `to` with a plain ERC-20 transfer: a payment that is not the agent's.
    async fn unrelated_transfer(&self, to: Address, amount: u64) -> B256 {
        let token = TestToken::new(self.token, &self.facilitator);
        let from = self.devnet.signer(1).address();
        token
            .mint(from, U256::from(amount))
            .send()
            .await
            .unwrap()
            .watch()
            .await
            .unwrap();
        token
            .transfer(to, U256::from(amount))
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap()
            .transaction_hash
    }
}

/// Buys `path` from `merchant`; the payment it made.
async fn buy(client: &X402Client, merchant: &Merchant, path: &str) -> X402Payment {
    let bought = client.get(&merchant.url(path)).await.unwrap();
    assert_eq!(bought.response.status(), 200);
    bought.payment.expect("a payment")
}

// ---------------------------------------------------------------------------------------------
// Item 4: a settlement counts only when the chain shows *this* authorization used.

#[tokio::test(flavor = "multi_thread")]
async fn a_settlement_verifies_only_with_the_transaction_that_used_this_authorization() {
    let shop = Shop::open().await;
    let client = shop.client();
    let agent = shop.agent.address();
    let honest = Merchant::start(
        &shop,
        vec![
            ("/eip3009", paid("eip3009", OnPayment::Settle)),
            ("/permit2", paid("permit2", OnPayment::Settle)),
        ],
    )
    .await;

    // Honest settlements, both methods: verified against the chain, from the agent's wallet.
    let first = buy(&client, &honest, "/eip3009").await;
    let by_permit2 = buy(&client, &honest, "/permit2").await;
    for (payment, tx) in [&first, &by_permit2].into_iter().zip(honest.settled()) {
        let settled = payment
            .verify_settlement(&shop.provider, agent)
            .await
            .unwrap();
        assert_eq!(
            (
                settled.transaction,
                settled.payer,
                settled.agent,
                settled.cosigner
            ),
            (tx, shop.wallet, agent, shop.cosigner)
        );
        // The search finds the same transaction, whatever the merchant says.
        let found = payment
            .find_settlement(&shop.provider, agent)
            .await
            .unwrap();
        assert_eq!(found, Some(settled));
    }
    assert_eq!(shop.balance(shop.pay_to).await, U256::from(2 * PRICE));

    // The record is another agent's claim: refused.
    let stranger = Address::repeat_byte(0x77);
    let wrong_agent = first.verify_settlement(&shop.provider, stranger).await;
    assert!(
        matches!(&wrong_agent, Err(Error::Invalid(e)) if e.contains("signed by agent")),
        "{wrong_agent:?}"
    );

    // Merchant D takes a payment without settling it and names the earlier settlement (the
    // same amount from the same wallet to the same payee): not this authorization's.
    for (path, earlier) in [("/eip3009", &first), ("/permit2", &by_permit2)] {
        let stale = earlier.settlement.as_ref().unwrap().transaction.unwrap();
        let method = path.trim_start_matches('/');
        let liar =
            Merchant::start(&shop, vec![(path, paid(method, OnPayment::Report(stale)))]).await;
        let unpaid = buy(&client, &liar, path).await;
        let verdict = unpaid.verify_settlement(&shop.provider, agent).await;
        assert!(
            matches!(&verdict, Err(Error::Invalid(e)) if e.contains("not settled by this payment")),
            "{path}: a settlement of another authorization verified: {verdict:?}"
        );
        assert_eq!(
            unpaid.find_settlement(&shop.provider, agent).await.unwrap(),
            None
        );
    }
    assert_eq!(
        shop.balance(shop.pay_to).await,
        U256::from(2 * PRICE),
        "nothing more was paid"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payment_the_agent_never_made_does_not_verify() {
    let shop = Shop::open().await;
    let client = shop.client();
    let agent = shop.agent.address();
    let merchant = Merchant::start(
        &shop,
        vec![("/eip3009", paid("eip3009", OnPayment::Settle))],
    )
    .await;
    let genuine = buy(&client, &merchant, "/eip3009").await;

    // Agent A logs a payment backed by another account's plain transfer to the merchant.
    let someone = shop.devnet.signer(1).address();
    let transfer = shop.unrelated_transfer(shop.pay_to, PRICE).await;
    let mut forged = genuine.clone();
    let settlement = forged.settlement.as_mut().unwrap();
    settlement.transaction = Some(transfer);
    settlement.payer = Some(someone);
    let verdict = forged.verify_settlement(&shop.provider, agent).await;
    assert!(
        verdict.is_err(),
        "a transfer from {someone}, no authorization of the wallet, verified as the payment"
    );

    // Or it rewrites the record to say it paid more, or someone else: the authorization it
    // carries no longer matches, and the decision id is no longer its digest.
    let mut inflated = genuine.clone();
    inflated.amount = U256::from(2 * PRICE);
    assert!(
        inflated
            .verify_settlement(&shop.provider, agent)
            .await
            .is_err()
    );
    let mut other_decision = genuine.clone();
    other_decision.request_id = B256::repeat_byte(9);
    assert!(
        other_decision
            .verify_settlement(&shop.provider, agent)
            .await
            .is_err()
    );
    genuine
        .verify_settlement(&shop.provider, agent)
        .await
        .unwrap();
}

/// Merchant D, as its own facilitator, settles a new payment in a Multicall3 batch that also
/// replays an older, already used one (tolerating its failure): the batch carries the old
/// authorization and pays the same amount to the same payee, so only the nonce's use tells
/// which payment it settled. One transaction never backs two payments.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_that_replays_a_used_authorization_settles_only_the_new_one() {
    let shop = Shop::open().await;
    let client = shop.client();
    let agent = shop.agent.address();
    for method in ["eip3009", "permit2"] {
        let honest = Merchant::start(&shop, vec![("/a", paid(method, OnPayment::Settle))]).await;
        let old = buy(&client, &honest, "/a").await;
        let keeper = Merchant::start(&shop, vec![("/b", paid(method, OnPayment::Refuse))]).await;
        let new = refused(client.get(&keeper.url("/b")).await);
        let calls = [&old, &new]
            .iter()
            .flat_map(|p| settlement_calls(shop.token, &p.payload))
            .collect();
        let tx = send(&shop.facilitator, MULTICALL3, batch(calls, true))
            .await
            .unwrap();

        let mut replayed = old.clone();
        replayed.settlement.as_mut().unwrap().transaction = Some(tx);
        let verdict = replayed.verify_settlement(&shop.provider, agent).await;
        assert!(
            matches!(&verdict, Err(Error::Invalid(e)) if e.contains("did not use this authorization")),
            "{method}: the batch verified as the old payment's settlement: {verdict:?}"
        );
        let settled = new
            .find_settlement(&shop.provider, agent)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(settled.transaction, tx, "{method}");
        client.release(new.request_id);
    }
}

/// ERC-6492: a wallet not deployed yet pays; the facilitator deploys it and settles in one
/// batch. Before, nothing is found (no code, nothing paid); after, the settlement verifies.
#[tokio::test(flavor = "multi_thread")]
async fn a_counterfactual_wallets_first_payment_verifies_once_it_deployed_the_wallet() {
    let shop = Shop::open_with(true).await;
    let client = shop.client();
    let agent = shop.agent.address();
    let keeper = Merchant::start(
        &shop,
        vec![("/weather", paid("eip3009", OnPayment::Refuse))],
    )
    .await;
    let payment = refused(client.get(&keeper.url("/weather")).await);
    assert_eq!(
        payment
            .find_settlement(&shop.provider, agent)
            .await
            .unwrap(),
        None
    );
    let tx = settle_on_chain(&shop.facilitator, shop.token, &payment.payload)
        .await
        .unwrap();
    let settled = client.watch(&payment).await.unwrap();
    assert_eq!((settled.transaction, settled.payer), (tx, shop.wallet));
    let mut reported = payment.clone();
    reported.settlement = Some(chaperone_sdk::Settlement {
        success: true,
        transaction: Some(tx),
        payer: Some(shop.wallet),
        network: "eip155:31337".into(),
        error_reason: None,
    });
    assert_eq!(
        reported
            .verify_settlement(&shop.provider, agent)
            .await
            .unwrap(),
        settled
    );
}

// ---------------------------------------------------------------------------------------------
// Item 5: a payment header goes only to the origin that asked for it.

#[tokio::test(flavor = "multi_thread")]
async fn a_payment_is_never_carried_to_another_origin() {
    let shop = Shop::open().await;
    let client = shop.client();
    let elsewhere = Merchant::start(
        &shop,
        vec![("/collect", paid("eip3009", OnPayment::Settle))],
    )
    .await;
    // D answers the paid request with a redirect to another origin.
    let redirecting = Merchant::start(
        &shop,
        vec![(
            "/weather",
            paid("eip3009", OnPayment::RedirectTo(elsewhere.url("/collect"))),
        )],
    )
    .await;
    let answer = client.get(&redirecting.url("/weather")).await;
    assert!(
        elsewhere.seen().is_empty(),
        "the paid request was carried to {}: {:?}",
        elsewhere.base,
        elsewhere.seen()
    );
    // The redirect is the answer, with the payment made (D may settle it: it was asked).
    let answer = answer.unwrap();
    assert_eq!(answer.response.status(), 307);
    let payment = answer.payment.expect("the payment made");
    assert_eq!(payment.resource, redirecting.url("/weather"));
    assert_eq!(redirecting.payments(), vec![payment.payload.clone()]);
    // The red team's attack: D settles, answers 307 to the same URL, and the application
    // follows it. The payment is still kept: the same authorization is presented again, no
    // second one is signed.
    let again = client.get(&redirecting.url("/weather")).await.unwrap();
    assert_eq!(again.response.status(), 307);
    assert_eq!(
        redirecting.payments(),
        vec![payment.payload.clone(), payment.payload],
        "a second payment was signed after a redirect"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_record_names_the_origin_that_asked_for_payment() {
    let shop = Shop::open().await;
    let client = shop.client();
    let seller = Merchant::start(
        &shop,
        vec![("/weather", paid("eip3009", OnPayment::Settle))],
    )
    .await;
    // The URL the app asked for redirects (before any payment) to another origin's 402.
    let front = Merchant::start(
        &shop,
        vec![(
            "/weather",
            Route::Redirect {
                to: seller.url("/weather"),
            },
        )],
    )
    .await;
    let bought = client.get(&front.url("/weather")).await.unwrap();
    assert_eq!(bought.response.status(), 200);
    let payment = bought.payment.expect("a payment");
    assert!(
        front.payments().is_empty(),
        "the origin that only redirected received the payment: {:?}",
        front.seen()
    );
    let asked: Vec<String> = front.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(asked, vec!["/weather"], "asked once, never paid");
    assert_eq!(seller.payments(), vec![payment.payload.clone()]);
    assert_eq!(
        payment.resource,
        seller.url("/weather"),
        "the record names the URL that asked for payment"
    );
}

// ---------------------------------------------------------------------------------------------
// Item 6: a payment sent is never forgotten, and never made twice on the client's own.

/// The `PaymentRefused` error's payment.
fn refused(answer: chaperone_sdk::Result<chaperone_sdk::X402Response>) -> X402Payment {
    match answer {
        Err(Error::PaymentRefused { payment, .. }) => *payment,
        other => panic!("expected the payment refused, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_payment_is_kept_and_never_signed_twice() {
    let shop = Shop::open().await;
    let client = shop.client();
    let keeper = Merchant::start(
        &shop,
        vec![("/weather", paid("eip3009", OnPayment::Refuse))],
    )
    .await;
    let url = keeper.url("/weather");

    // The error carries the payment the merchant now holds, and the client keeps it.
    let payment = refused(client.get(&url).await);
    assert_eq!(keeper.payments(), vec![payment.payload.clone()]);
    assert_eq!(client.outstanding(), vec![payment.clone()]);
    assert_eq!(payment.authorization().unwrap().payer(), shop.wallet);
    // It names itself with x402's `payment-identifier`, as the merchant offered.
    let id = &decode_header(&payment.payload)["extensions"]["payment-identifier"]["info"]["id"];
    assert_eq!(
        id,
        &json!(format!(
            "chaperone_{}",
            alloy::hex::encode(payment.request_id)
        ))
    );

    // The application retries the same request: the merchant sees the same authorization
    // again, never a second one.
    assert_eq!(refused(client.get(&url).await), payment);
    let payments = keeper.payments();
    assert_eq!(payments.len(), 2, "{:?}", keeper.seen());
    assert_eq!(
        payments[0], payments[1],
        "a second authorization was signed"
    );

    // The merchant settles it anyway: the client reports it settled, by this authorization.
    let tx = settle_on_chain(&shop.facilitator, shop.token, &payment.payload)
        .await
        .unwrap();
    let settled = client.watch(&payment).await.unwrap();
    assert_eq!((settled.transaction, settled.payer), (tx, shop.wallet));
    assert_eq!(shop.balance(shop.pay_to).await, U256::from(PRICE));

    // Paid, still refused: a retry presents the same (now used) authorization, and when it
    // can no longer be used the chain's answer is that it was paid. Never a second payment.
    assert_eq!(refused(client.get(&url).await), payment);
    shop.travel(600).await;
    let after = client.get(&url).await;
    assert!(
        matches!(&after, Err(Error::PaymentRefused { reason, .. }) if reason.contains(&tx.to_string())),
        "{after:?}"
    );
    assert_eq!(keeper.payments().len(), 3, "{:?}", keeper.seen());
    assert_eq!(shop.balance(shop.pay_to).await, U256::from(PRICE));

    // Only the application can let it go.
    assert_eq!(client.release(payment.request_id), Some(payment.clone()));
    assert!(client.outstanding().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payment_never_used_is_paid_anew_only_once_it_expired() {
    let shop = Shop::open().await;
    let client = shop.client();
    let agent = shop.agent.address();
    let keeper = Merchant::start(
        &shop,
        vec![("/weather", paid("eip3009", OnPayment::Refuse))],
    )
    .await;
    let url = keeper.url("/weather");
    let first = refused(client.get(&url).await);

    // Chain time passes its validity: the watch says it expired, and the chain that it
    // never moved anything.
    shop.travel(600).await;
    assert!(matches!(client.watch(&first).await, Err(Error::Expired)));
    assert_eq!(
        first.find_settlement(&shop.provider, agent).await.unwrap(),
        None
    );
    assert!(client.outstanding().is_empty());

    // Then, and only then, the same request pays with a new authorization.
    let second = refused(client.get(&url).await);
    assert_ne!(second.nonce, first.nonce);
    assert_eq!(keeper.payments(), vec![first.payload, second.payload]);
}

/// The red team's race: two identical requests sent at once each signed a payment, so the
/// merchant held two usable authorizations. One payment decision runs at a time per request:
/// the second presents the first's payment.
#[tokio::test(flavor = "multi_thread")]
async fn identical_requests_sent_at_once_sign_one_payment() {
    let shop = Shop::open().await;
    let client = shop.client();
    let keeper = Merchant::start(
        &shop,
        vec![("/weather", paid("eip3009", OnPayment::Refuse))],
    )
    .await;
    let url = keeper.url("/weather");
    let (a, b) = tokio::join!(client.get(&url), client.get(&url));
    let (a, b) = (refused(a), refused(b));
    assert_eq!(a, b, "two payments were signed for one request");
    let payments = keeper.payments();
    assert_eq!(payments.len(), 2, "{:?}", keeper.seen());
    assert_eq!(
        payments[0], payments[1],
        "a second authorization was signed"
    );
}
