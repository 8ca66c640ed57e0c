//! The agent's files themselves: private to its user (0600, in a folder only it can write),
//! and the content file beside the SQLite file.

use super::*;

/// Only the agent's user may read or write them.
pub(super) const PRIVATE_FILE: u32 = 0o600;
/// Only the agent's user may list, create or remove files in it.
pub(super) const PRIVATE_FOLDER: u32 = 0o700;

/// `<data file><suffix>`: SQLite's `-wal` and `-shm`, the content file's `-content`.
pub(super) fn beside(data_file: &Path, suffix: &str) -> PathBuf {
    let mut name = data_file.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

pub(super) fn io_error(what: String, e: &std::io::Error) -> Error {
    Error::Local(sqlx::Error::Io(std::io::Error::new(
        e.kind(),
        format!("{what}: {e}"),
    )))
}

/// Makes the data file's folder and files private to the agent's user before SQLite opens
/// them, without touching the process's umask (this is a library).
///
/// - A missing folder is created 0700. An existing one is left as its owner made it, unless
///   other users can write to it: refused. (Even with the sticky bit, as in `/tmp`: another
///   user could create `agent.db-wal` there before SQLite does, and read every salt written
///   to it.)
/// - The database file is created 0600 here rather than by SQLite (0644): SQLite gives its
///   `-wal` and `-shm` the database's mode.
/// - Files an older SDK left readable by others are made 0600 (by path: opening and closing
///   a file SQLite has open would drop its locks).
pub(super) fn private_files(data_file: &Path) -> Result<()> {
    let folder = match data_file.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    let metadata = match std::fs::metadata(folder) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(PRIVATE_FOLDER)
                .create(folder)
                .map_err(|e| io_error(format!("creating {}", folder.display()), &e))?;
            std::fs::metadata(folder)
        }
        found => found,
    }
    .map_err(|e| io_error(format!("reading {}", folder.display()), &e))?;
    if metadata.permissions().mode() & 0o002 != 0 {
        return Err(Error::NotPrivate {
            path: folder.to_owned(),
            detail: "other users can create and replace files in this folder, where the \
                     agent's salts and content would be; keep the data file in a folder only \
                     you can write to (`chmod o-w`, or better `chmod 700`)"
                .into(),
        });
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE)
        .open(data_file)
    {
        // A new, empty file: SQLite makes it a database.
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_error(format!("creating {}", data_file.display()), &e)),
    }
    for path in [
        data_file.to_owned(),
        beside(data_file, "-wal"),
        beside(data_file, "-shm"),
        beside(data_file, "-journal"),
        ContentFile::path(data_file),
    ] {
        let mode = match std::fs::metadata(&path) {
            Ok(metadata) => metadata.permissions().mode(),
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error(format!("reading {}", path.display()), &e)),
        };
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(PRIVATE_FILE))
                .map_err(|e| Error::NotPrivate {
                    path: path.clone(),
                    detail: format!(
                        "its mode is {:o} and it could not be made 0600 ({e}); is it another \
                         user's?",
                        mode & 0o777
                    ),
                })?;
        }
    }
    Ok(())
}

/// The content file, beside the SQLite file: each batch's records' input, output and metadata
/// bytes, then the batch's request body, appended; SQLite keeps where they lie. (Through
/// SQLite's write-ahead log every byte was copied four times and its pages zeroed.) A batch's
/// bytes are written before the transaction that references them commits; whatever lies past
/// the last committed batch is cut off when the file is opened.
#[derive(Debug)]
pub(super) struct ContentFile {
    file: File,
    /// Where the next batch's content goes: the end of the last committed batch.
    end: Mutex<u64>,
}

impl ContentFile {
    /// `<data file>-content`, like SQLite's own `-wal` beside it.
    pub(super) fn path(data_file: &Path) -> PathBuf {
        beside(data_file, "-content")
    }

    pub(super) fn open(data_file: &Path, end: u64) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            // Raw model content: readable by the agent's user only.
            .mode(PRIVATE_FILE)
            .open(Self::path(data_file))?;
        // Bytes of a batch whose transaction never committed (a crash in between).
        file.set_len(end)?;
        Ok(Self {
            file,
            end: Mutex::new(end),
        })
    }

    pub(super) fn end(&self) -> u64 {
        *self.end.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn committed(&self, end: u64) {
        *self.end.lock().unwrap_or_else(PoisonError::into_inner) = end;
    }

    /// Writes `content[range]` and then `body` at `offset`, off the async workers (a batch is
    /// megabytes).
    pub(super) async fn write_batch(
        self: &Arc<Self>,
        content: Arc<Zeroizing<Vec<u8>>>,
        range: std::ops::Range<usize>,
        body: Arc<[u8]>,
        offset: u64,
    ) -> Result<()> {
        let file = self.clone();
        tokio::task::spawn_blocking(move || {
            let body_offset = offset + range.len() as u64;
            file.file.write_all_at(&content[range], offset)?;
            file.file.write_all_at(&body, body_offset)
        })
        .await
        .map_err(|_| Error::Closed)??;
        Ok(())
    }

    pub(super) async fn read_at(
        self: &Arc<Self>,
        offset: u64,
        len: usize,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let content = self.clone();
        let bytes = tokio::task::spawn_blocking(move || {
            let mut bytes = Zeroizing::new(vec![0u8; len]);
            content
                .file
                .read_exact_at(&mut bytes, offset)
                .map(|()| bytes)
        })
        .await
        .map_err(|_| Error::Closed)??;
        Ok(bytes)
    }

    /// Overwrites a range with zeros and waits until that reached the disk.
    pub(super) async fn erase(self: &Arc<Self>, offset: u64, len: usize) -> Result<()> {
        let content = self.clone();
        tokio::task::spawn_blocking(move || {
            content.file.write_all_at(&vec![0u8; len], offset)?;
            content.file.sync_data()
        })
        .await
        .map_err(|_| Error::Closed)??;
        Ok(())
    }
}
