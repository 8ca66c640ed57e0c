//! Ports for processes and servers that bind them later.

use std::sync::atomic::{AtomicU32, Ordering};

/// A port nothing listens on, for a process that binds it later. It is taken below the
/// kernel's ephemeral range (`ip_local_port_range`, 32768 up here): a port the kernel handed
/// out (`bind` to port 0) is one it also gives outgoing connections as their local port, and
/// `chaperone up` makes such connections (to Anvil) before it binds its server, so once in a
/// while its own connection held the port it was told to listen on. Each port is handed out
/// once per process; processes start at different places.
pub fn free_port() -> u16 {
    const LOW: u32 = 20_000;
    const HIGH: u32 = 32_768;
    static TRIED: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7_919);
    loop {
        let n = TRIED.fetch_add(1, Ordering::Relaxed);
        assert!(n < HIGH - LOW, "no free port in {LOW}..{HIGH}");
        let port = u16::try_from(LOW + start.wrapping_add(n) % (HIGH - LOW)).expect("below 32768");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
