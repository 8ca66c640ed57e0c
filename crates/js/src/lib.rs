//! The Node package `@chaperone/sdk`: the Rust SDK behind napi-rs, so a TypeScript agent gets
//! the same record format, commitments, batching and outbox as a Rust one — there is no second
//! implementation. Every call returns a Promise: the work runs on napi-rs's Tokio runtime (the
//! SDK's background tasks too) and never blocks Node's event loop. `index.js` turns the
//! errors into typed classes (`Denied`, `Pending`, …; see `errors.rs`).

mod convert;
mod errors;
mod recorder;
mod types;
mod wallet;
mod x402;

// The module-level exports (napi-rs registers them for JavaScript; `pub` here keeps them
// reachable in every build, tests' included).
pub use recorder::agent_address;
pub use types::{Devnet, read_devnet};
