//! Bindings from the committed artifacts (CI checks they match a fresh `forge build`).
#![allow(missing_docs, unreachable_pub, clippy::too_many_arguments)]

use alloy::sol;

sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    AuditLog,
    "../../contracts/out/AuditLog.sol/AuditLog.json"
);

sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    AgentWallet,
    "../../contracts/out/AgentWallet.sol/AgentWallet.json"
);

sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    AgentWalletFactory,
    "../../contracts/out/AgentWalletFactory.sol/AgentWalletFactory.json"
);

sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    TestToken,
    "../../contracts/out/TestToken.sol/TestToken.json"
);

/// The wallet's ABI `Call` from the core EIP-712 `Call` (the same three fields).
impl From<&chaperone_core::Call> for AgentWallet::Call {
    fn from(call: &chaperone_core::Call) -> Self {
        Self {
            to: call.to,
            value: call.value,
            data: call.data.clone(),
        }
    }
}
