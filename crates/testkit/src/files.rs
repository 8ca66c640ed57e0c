//! Fresh names, private folders and SQLite files in the temporary folder.

use std::{
    os::unix::fs::DirBuilderExt,
    path::PathBuf,
    sync::atomic::{AtomicU32, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

/// A name no other call makes, in this process or another: `{prefix}_{pid}_{nanos}_{n}`. Only
/// letters, digits and `_` when `prefix` is so (a PostgreSQL database name, say).
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_nanos();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh, empty folder in the temporary folder that only this user can enter (0700):
/// `chaperone_{what}_…`.
pub fn temp_dir(what: &str) -> PathBuf {
    let folder = std::env::temp_dir().join(unique_name(&format!("chaperone_{what}")));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&folder)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", folder.display()));
    folder
}

/// A fresh file name (`….db`, not created) in a folder of its own that only this user can
/// enter: the SDK refuses a data file in a folder other users can write to, such as the
/// temporary folder itself. Change its extension for other kinds of file.
pub fn private_file(what: &str) -> PathBuf {
    let folder = temp_dir(what);
    let name = folder
        .file_name()
        .expect("a fresh folder has a name")
        .to_string_lossy()
        .into_owned();
    folder.join(format!("{name}.db"))
}

/// A fresh SQLite database file (not created yet) and the URL that creates it.
#[derive(Debug, Clone)]
pub struct SqliteFile {
    /// The database file, in the temporary folder; its `-wal` and `-shm` files go beside it.
    pub path: PathBuf,
    /// `sqlite:{path}?mode=rwc`.
    pub url: String,
}

/// A fresh SQLite file in the temporary folder: `chaperone_{what}_….db`.
pub fn sqlite_file(what: &str) -> SqliteFile {
    let path =
        std::env::temp_dir().join(format!("{}.db", unique_name(&format!("chaperone_{what}"))));
    let url = format!("sqlite:{}?mode=rwc", path.display());
    SqliteFile { path, url }
}
