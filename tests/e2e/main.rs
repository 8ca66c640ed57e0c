//! End to end, as a user runs Chaperone: the `chaperone` binary and the example agent as
//! processes, a real Anvil, real HTTP, SQLite files in a temporary directory.
//!
//! - `chaperone up` in a temp dir; the example agent logs 100 calls while the devnet is stopped
//!   and restarted under it (the outbox redelivers: nothing lost, nothing twice); then it pays
//!   inside and outside its policy and discloses a record; `chaperone verify` checks it on chain;
//!   killed mid-run, the agent delivers what its outbox held when started again.
//! - `chaperone deploy` puts the contracts at the same CREATE2 addresses every time.
//! - `chaperone serve --config` runs the service from a configuration file.
//! - Every command has `--help`; a bad flag is named; completions print.
#![allow(missing_docs, unreachable_pub, clippy::unwrap_used)]

mod cli;
mod deploy;
mod devnet;
mod evidence;
mod x402;

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

pub fn chaperone() -> Command {
    Command::new(env!("CARGO_BIN_EXE_chaperone"))
}

/// The example agent, built next to the `chaperone` binary (`cargo test --all-targets` and
/// `cargo build --examples` build it).
pub fn example_agent() -> Command {
    let bin = Path::new(env!("CARGO_BIN_EXE_chaperone"));
    let agent = bin.parent().unwrap().join("examples/agent");
    assert!(
        agent.exists(),
        "{} is missing: build it with `cargo build -p chaperone-cli --example agent` \
         (`cargo test --workspace --all-targets` does)",
        agent.display()
    );
    Command::new(agent)
}

/// An example binary built next to the `chaperone` binary.
pub fn example(name: &str) -> Command {
    let bin = Path::new(env!("CARGO_BIN_EXE_chaperone"));
    let path = bin.parent().unwrap().join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p chaperone-cli --examples`",
        path.display()
    );
    Command::new(path)
}

/// Sends SIGINT (what Ctrl-C sends) and waits for a clean exit.
pub fn interrupt(mut child: Child) {
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exited with {status} after Ctrl-C");
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().ok();
    panic!("did not stop within 20 s of Ctrl-C");
}

/// Reads a child's stdout until a line parses as JSON.
pub fn first_json_line(child: &mut Child) -> serde_json::Value {
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("the process ended before printing its JSON"))
            .unwrap();
        if let Ok(value) = serde_json::from_str(&line) {
            return value;
        }
    }
}

pub fn run_json(command: &mut Command) -> (i32, serde_json::Value) {
    let output = command.stderr(Stdio::inherit()).output().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let value = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON in the output: {text}"));
    (output.status.code().unwrap_or(-1), value)
}
