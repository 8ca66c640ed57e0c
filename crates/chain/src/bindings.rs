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

// The x402 infrastructure `chaperone up` installs on Anvil at the canonical addresses the x402
// facilitators use (contracts/src/devnet/).
sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    Permit2,
    "../../contracts/out/Permit2.sol/Permit2.json"
);

/// In a module of its own: its ABI names `Permit2`'s structs (`x402_proxy::Permit2::…`), which
/// would clash with `Permit2`.
pub mod x402_proxy {
    alloy::sol!(
        #[sol(rpc)]
        #[derive(Debug, PartialEq, Eq)]
        X402ExactPermit2Proxy,
        "../../contracts/out/X402ExactPermit2Proxy.sol/X402ExactPermit2Proxy.json"
    );
}
pub use x402_proxy::X402ExactPermit2Proxy;

sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    UniversalSigValidator,
    "../../contracts/out/UniversalSigValidator.sol/UniversalSigValidator.json"
);

sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    Multicall3,
    "../../contracts/out/Multicall3.sol/Multicall3.json"
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
