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
mod x402;

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
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

/// A port nothing listens on, for a process that binds it later. It is taken below the
/// kernel's ephemeral range (`ip_local_port_range`, 32768 up here): a port the kernel handed
/// out (`bind` to port 0) is one it also gives outgoing connections as their local port, and
/// `chaperone up` makes such connections (to Anvil) before it binds its server, so once in a
/// while its own connection held the port it was told to listen on. Each port is handed out
/// once per process; processes start at different places.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const HIGH: u32 = 32_768;
    static TRIED: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7_919);
    loop {
        let n = TRIED.fetch_add(1, Ordering::Relaxed);
        assert!(n < HIGH - LOW, "no free port in {LOW}..{HIGH}");
        let port = (LOW + start.wrapping_add(n) % (HIGH - LOW)) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "chaperone_e2e_{what}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
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
