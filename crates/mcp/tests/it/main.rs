//! The gateway against hostile upstreams and agents, end to end: an rmcp upstream served over
//! Streamable HTTP on loopback (it answers with tasks, changes its answers, sends task
//! notifications it should not), the gateway as a library (over stdio lines or its `--http`
//! router), a recorder with no server (records stay in its outbox), and an rmcp agent that
//! keeps every notification it gets.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;
mod held_calls;
mod records;
mod task_inputs;
mod tasks;
