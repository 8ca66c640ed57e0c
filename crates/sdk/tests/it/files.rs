//! The agent's files on its own machine: the salts are the secret that keeps low-entropy content
//! ("yes", an amount, a name) hidden behind its public commitment, so every file that holds
//! them, or the content, is readable by the agent's user alone, and `forget` leaves neither in
//! any of them.

use std::{os::unix::fs::PermissionsExt, path::Path, time::Duration};

use chaperone_core::{B256, Secp256k1Signer};
use chaperone_sdk::{Error, Recorder};
use chaperone_testkit::temp_dir;
use sqlx::{Connection, SqliteConnection};

use crate::{Server, config};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Every file in `folder`, with its mode.
fn files(folder: &Path) -> Vec<(String, u32)> {
    let mut files: Vec<(String, u32)> = std::fs::read_dir(folder)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.file_name().to_string_lossy().into_owned(),
                mode(&entry.path()),
            )
        })
        .collect();
    files.sort();
    files
}

fn assert_private(folder: &Path, expected: &[&str]) {
    let files = files(folder);
    for name in expected {
        assert!(
            files.iter().any(|(n, _)| n == name),
            "{name} is in {}: {files:?}",
            folder.display()
        );
    }
    let open: Vec<String> = files
        .iter()
        .filter(|(_, mode)| *mode != 0o600)
        .map(|(name, mode)| format!("{name} {mode:o}"))
        .collect();
    assert_eq!(
        open,
        Vec::<String>::new(),
        "files in {} that are not 0600 (other users of the machine can read them)",
        folder.display()
    );
}

async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within 30 s"))
}

async fn record_a_few(recorder: &Recorder, tag: &str) {
    for i in 0..5 {
        let input = format!("{tag} prompt {i}");
        recorder
            .record(
                "model-x",
                input.as_bytes(),
                b"answer",
                Some(b"{\"tokens\":3}"),
            )
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn every_file_the_recorder_writes_is_readable_by_its_user_alone() {
    let key = Secp256k1Signer::random().unwrap();
    let server = Server::start(0, None, &[key.address()]).await;
    let folder = temp_dir("files");
    let data = folder.join("agent.db");
    let recorder = Recorder::open(config(&server.url, &data), key)
        .await
        .unwrap();
    record_a_few(&recorder, "first").await;
    within("sync", recorder.sync()).await.unwrap();
    record_a_few(&recorder, "second").await;
    within("sync", recorder.sync()).await.unwrap();
    // While it runs: SQLite's write-ahead log and its index exist beside the database.
    assert_private(
        &folder,
        &[
            "agent.db",
            "agent.db-wal",
            "agent.db-shm",
            "agent.db-content",
        ],
    );
    recorder.shutdown().await.unwrap();
    assert_private(&folder, &["agent.db", "agent.db-content"]);
    assert_eq!(mode(&folder), 0o700);
}

#[tokio::test]
async fn a_missing_data_folder_is_created_for_its_user_alone() {
    let parent = temp_dir("files_parent");
    let folder = parent.join("agent").join("data");
    let data = folder.join("agent.db");
    let recorder = Recorder::open(
        config("http://127.0.0.1:9", &data),
        Secp256k1Signer::random().unwrap(),
    )
    .await
    .unwrap();
    record_a_few(&recorder, "only").await;
    within("flush", recorder.flush()).await.unwrap();
    assert_private(
        &folder,
        &[
            "agent.db",
            "agent.db-wal",
            "agent.db-shm",
            "agent.db-content",
        ],
    );
    assert_eq!(mode(&folder), 0o700);
    assert_eq!(mode(&parent.join("agent")), 0o700);
    recorder.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_folder_other_users_can_write_to_is_refused() {
    // World-writable, and world-writable with the sticky bit like /tmp: another user can
    // create `agent.db-wal` there before SQLite does, and read every salt written to it.
    for open_mode in [0o777, 0o1777] {
        let folder = temp_dir("files_open");
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(open_mode)).unwrap();
        let data = folder.join("agent.db");
        match Recorder::open(
            config("http://127.0.0.1:9", &data),
            Secp256k1Signer::random().unwrap(),
        )
        .await
        {
            Err(e @ Error::NotPrivate { .. }) => {
                let message = e.to_string();
                assert!(
                    message.contains(&folder.display().to_string())
                        && message.contains("other users"),
                    "{message}"
                );
            }
            other => panic!("a folder of mode {open_mode:o}: expected NotPrivate, got {other:?}"),
        }
        assert_eq!(files(&folder), vec![], "nothing written into it");
        assert_eq!(mode(&folder), open_mode, "its mode is the owner's business");
    }
}

#[tokio::test]
async fn files_an_older_sdk_left_readable_are_made_private_on_opening() {
    let folder = temp_dir("files_older");
    let data = folder.join("agent.db");
    let key = Secp256k1Signer::random().unwrap();
    let recorder = Recorder::open(config("http://127.0.0.1:9", &data), key.clone())
        .await
        .unwrap();
    record_a_few(&recorder, "before").await;
    within("flush", recorder.flush()).await.unwrap();
    recorder.shutdown().await.unwrap();
    // What the SDK created before it knew better: everything 0644.
    for (name, _) in files(&folder) {
        std::fs::set_permissions(folder.join(name), std::fs::Permissions::from_mode(0o644))
            .unwrap();
    }

    let recorder = Recorder::open(config("http://127.0.0.1:9", &data), key)
        .await
        .unwrap();
    record_a_few(&recorder, "after").await;
    within("flush", recorder.flush()).await.unwrap();
    assert_private(
        &folder,
        &[
            "agent.db",
            "agent.db-wal",
            "agent.db-shm",
            "agent.db-content",
        ],
    );
    recorder.shutdown().await.unwrap();
}

/// The input, output and metadata salts of the record with `leaf_hash`, read straight from the
/// database.
async fn salts_of(data: &Path, leaf_hash: B256) -> Vec<[u8; 32]> {
    let mut db = SqliteConnection::connect(&format!("sqlite:{}", data.display()))
        .await
        .unwrap();
    let batches: Vec<(Vec<u8>, Vec<u8>)> =
        sqlx::query_as("SELECT leaf_hashes, openings FROM batch_openings")
            .fetch_all(&mut db)
            .await
            .unwrap();
    db.close().await.unwrap();
    for (hashes, openings) in batches {
        if let Some(position) = hashes
            .chunks_exact(32)
            .position(|h| h == leaf_hash.as_slice())
        {
            let opening = &openings[position * 108..];
            return (0..3)
                .map(|k| opening[32 * k..32 * (k + 1)].try_into().unwrap())
                .collect();
        }
    }
    panic!("record {leaf_hash} is in no batch");
}

/// Which files in `folder` contain `needle`.
fn holding(folder: &Path, needle: &[u8]) -> Vec<String> {
    files(folder)
        .into_iter()
        .filter(|(name, _)| {
            std::fs::read(folder.join(name))
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle)
        })
        .map(|(name, _)| name)
        .collect()
}

#[tokio::test]
async fn forget_leaves_the_salts_and_content_in_none_of_the_files() {
    // No server: the outbox keeps retrying (reading the database) while `forget` runs.
    let folder = temp_dir("files_forget");
    let data = folder.join("agent.db");
    let recorder = Recorder::open(
        config("http://127.0.0.1:9", &data),
        Secp256k1Signer::random().unwrap(),
    )
    .await
    .unwrap();
    let secret = b"yes, transfer 12345678 to Alice";
    let mut recorded = Vec::new();
    for i in 0..5 {
        let input = if i == 2 {
            secret.to_vec()
        } else {
            format!("prompt {i}").into_bytes()
        };
        recorded.push(
            recorder
                .record("model-x", &input, b"answer", Some(b"{\"tokens\":3}"))
                .await
                .unwrap(),
        );
    }
    within("flush", recorder.flush()).await.unwrap();
    // Many batches after it: as their rows are inserted, SQLite moves the earlier rows between
    // pages and leaves copies in the pages' free space, which only secure_delete overwrites.
    for _ in 0..40 {
        record_a_few(&recorder, "later").await;
        within("flush", recorder.flush()).await.unwrap();
    }

    let forgotten = salts_of(&data, recorded[2].leaf_hash).await;
    let kept = salts_of(&data, recorded[3].leaf_hash).await;
    for salt in forgotten.iter().chain(&kept) {
        assert!(
            !holding(&folder, salt).is_empty(),
            "the salts are on disk before forget"
        );
    }
    assert_eq!(holding(&folder, secret), vec!["agent.db-content"]);

    recorder.forget(recorded[2].leaf_hash).await.unwrap();
    // While the recorder still runs, and after it stopped (SQLite folds its log back in).
    let check = |when: &str| {
        for (k, salt) in forgotten.iter().enumerate() {
            assert_eq!(
                holding(&folder, salt),
                Vec::<String>::new(),
                "{when}: salt {k} of the forgotten record is still in these files"
            );
        }
        assert_eq!(
            holding(&folder, secret),
            Vec::<String>::new(),
            "{when}: the forgotten content is still in these files"
        );
        for salt in &kept {
            assert!(
                !holding(&folder, salt).is_empty(),
                "{when}: the other records keep their salts"
            );
        }
        assert_eq!(
            holding(&folder, b"prompt 3"),
            vec!["agent.db-content"],
            "{when}: the other records keep their content"
        );
    };
    check("after forget");
    recorder.shutdown().await.unwrap();
    // Let the pool's connections close (the last one checkpoints into the database).
    tokio::time::sleep(Duration::from_millis(200)).await;
    check("after shutdown");
}
