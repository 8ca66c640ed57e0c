//! The data directory of `chaperone up`: private to its owner (it holds the devnet's keys), and
//! the Anvil a previous `up` of it may have left running.

use std::path::Path;

use anyhow::{Context, bail};

use crate::Output;

/// Stops the Anvil a previous `up` of this data directory recorded in `pid_file`, if it still
/// runs: only a process that is Anvil (its command line says so, on Linux) is signalled, so a
/// recycled pid is left alone. SIGTERM first (Anvil then writes its `--state`), SIGKILL after
/// ten seconds.
pub(super) fn stop_leftover_anvil(pid_file: &Path, out: &Output) {
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
    else {
        return;
    };
    let alive = || Path::new(&format!("/proc/{pid}")).exists();
    let is_anvil = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|cmdline| String::from_utf8_lossy(&cmdline).contains("anvil"))
        .unwrap_or(false);
    if is_anvil {
        out.step(&format!(
            "stopping the Anvil (pid {pid}) a previous `chaperone up` left running"
        ));
        let signal = |name: &str| {
            let _ = std::process::Command::new("kill")
                .arg(format!("-{name}"))
                .arg(pid.to_string())
                .status();
        };
        signal("TERM");
        for _ in 0..100 {
            if !alive() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        if alive() {
            signal("KILL");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    let _ = std::fs::remove_file(pid_file);
}

/// Creates the data directory so that only its owner can enter it (0700): it holds the
/// devnet's keys and admin token, and the example agents' salts and content. An existing one
/// is left as its owner made it, unless other users can write to it: refused, since they could
/// replace those files or plant their own where an agent's are about to be created.
pub(super) fn private_data_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating the data directory {}", dir.display())),
        Err(e) => Err(e).with_context(|| format!("reading the data directory {}", dir.display())),
        Ok(metadata) if metadata.permissions().mode() & 0o002 != 0 => bail!(
            "the data directory {} is writable by other users of this machine, who could \
             read or replace the keys and salts kept there: use a directory only you can \
             write to (--data-dir), or `chmod 700 {}`",
            dir.display(),
            dir.display()
        ),
        Ok(_) => Ok(()),
    }
}

/// Writes a file only its owner can read (0600): it holds (devnet) private keys. A new file
/// is never readable by others, not even for a moment; one that was there is made 0600
/// before the keys are written into it.
pub(super) fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::{
        io::Write,
        os::unix::fs::{OpenOptionsExt, PermissionsExt},
    };
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            file.write_all(text.as_bytes())
        });
    written.with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::{os::unix::fs::PermissionsExt, path::PathBuf};

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn scratch(what: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "chaperone_up_{what}_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        private_data_dir(&dir).unwrap();
        dir
    }

    #[test]
    fn the_data_directory_and_the_key_files_are_private() {
        let parent = scratch("keys");
        assert_eq!(mode(&parent), 0o700);
        let dir = parent.join(".chaperone").join("devnet");
        private_data_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&parent.join(".chaperone")), 0o700);

        let file = dir.join("devnet.json");
        write_private(&file, "{\"agent_key\": \"0x01\"}").unwrap();
        assert_eq!(mode(&file), 0o600);
        // A file an older `up` left readable is made private before the keys go in.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&file, "{}").unwrap();
        assert_eq!(mode(&file), 0o600);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "{}");
        std::fs::remove_dir_all(&parent).unwrap();
    }

    #[test]
    fn a_data_directory_other_users_can_write_to_is_refused() {
        let dir = scratch("open");
        for open in [0o777, 0o1777] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(open)).unwrap();
            let message = format!("{:#}", private_data_dir(&dir).unwrap_err());
            assert!(message.contains("writable by other users"), "{message}");
            assert_eq!(mode(&dir), open, "left as its owner made it");
        }
        // Its owner's own choice otherwise (a shared, read-only project folder, say).
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_data_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o755);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
