use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use chaperone_core::{CheckpointVerifier, CommitmentKind, Secp256k1Signer};
use chaperone_sdk::{Error, ErrorCode, Recorder};
use sqlx::{Connection, Row, SqliteConnection};

use chaperone_testkit::{free_port, private_file};

use crate::{Server, config};

async fn local(path: &std::path::Path) -> SqliteConnection {
    SqliteConnection::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap()
}

async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within 30 s"))
}

#[tokio::test]
async fn batches_are_bounded_signed_once_and_logged_in_order() {
    let key = Secp256k1Signer::random().unwrap();
    let server = Server::start(0, None, &[key.address()]).await;
    let data = private_file("agent");
    let mut config = config(&server.url, &data);
    config.max_batch = 100;
    config.linger = Duration::from_millis(50);
    let recorder = Recorder::open(config, key).await.unwrap();
    for i in 0..250u32 {
        recorder
            .record("m", format!("in {i}").as_bytes(), b"out", None)
            .await
            .unwrap();
    }
    within("sync", recorder.sync()).await.unwrap();

    let mut db = local(&data).await;
    let sizes: Vec<i64> = sqlx::query("SELECT size FROM outbox ORDER BY batch_id")
        .fetch_all(&mut db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        sizes.len() >= 3,
        "250 records in batches of ≤ 100: {sizes:?}"
    );
    assert!(sizes.iter().all(|s| *s <= 100), "{sizes:?}");
    assert_eq!(sizes.iter().sum::<i64>(), 250);
    assert_eq!(
        server.sequences(recorder.agent()).await,
        (0..250).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn outbox_redelivers_after_an_outage_exactly_once() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let data = private_file("agent");
    let key = Secp256k1Signer::random().unwrap();
    let recorder = Recorder::open(config(&url, &data), key.clone())
        .await
        .unwrap();
    for _ in 0..50 {
        recorder
            .record("m", b"prompt", b"answer", None)
            .await
            .unwrap();
    }
    within("flush", recorder.flush()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let progress = recorder.progress();
    assert_eq!(
        progress.persisted, 50,
        "all persisted while the server is away"
    );
    assert_eq!(progress.delivered, 0, "nothing delivered without a server");

    let server = Server::start(port, None, &[key.address()]).await;
    within("sync after the outage", recorder.sync())
        .await
        .unwrap();
    assert_eq!(
        server.sequences(key.address()).await,
        (0..50).collect::<Vec<_>>()
    );

    // A crash after the server logged the batches but before their receipts were stored:
    // on reopening, everything is sent again, and the server answers with the same positions.
    recorder.shutdown().await.unwrap();
    sqlx::query("UPDATE outbox SET delivered_ms = NULL, receipt = NULL, first_index = NULL")
        .execute(&mut local(&data).await)
        .await
        .unwrap();
    let recorder = Recorder::open(config(&url, &data), key.clone())
        .await
        .unwrap();
    assert_eq!(recorder.progress().delivered, 0);
    for _ in 0..10 {
        recorder
            .record("m", b"prompt", b"answer", None)
            .await
            .unwrap();
    }
    within("sync after the restart", recorder.sync())
        .await
        .unwrap();
    assert_eq!(
        server.sequences(key.address()).await,
        (0..60).collect::<Vec<_>>(),
        "the resend logged nothing twice and the chain continued"
    );
    let first = recorder.records().await.unwrap()[0].1;
    let receipt = recorder
        .receipt(&chaperone_sdk::Recorded {
            record: chaperone_core::Record {
                agent: key.address(),
                sequence: 0,
                timestamp_ms: 0,
                model: "m".into(),
                input: chaperone_core::Commitment(Default::default()),
                output: chaperone_core::Commitment(Default::default()),
                metadata: None,
                previous: Default::default(),
            },
            leaf_hash: first,
        })
        .await
        .unwrap();
    assert_eq!(receipt.index, 0);
    receipt.receipt.verify(server.operator.address()).unwrap();
}

#[tokio::test]
async fn content_and_bodies_are_appended_once_and_a_torn_batch_is_cut_off_on_reopening() {
    let data = private_file("agent");
    let content_file = data.with_extension("db-content");
    let key = Secp256k1Signer::random().unwrap();
    let recorder = Recorder::open(config("http://127.0.0.1:9", &data), key.clone())
        .await
        .unwrap();
    recorder.record("m", b"in-0", b"out-0", None).await.unwrap();
    recorder
        .record("m", b"in-1", b"out-1", Some(b"meta-1"))
        .await
        .unwrap();
    within("flush", recorder.flush()).await.unwrap();
    recorder.shutdown().await.unwrap();
    // A crash after a batch's content was written but before its transaction committed.
    let committed = std::fs::read(&content_file).unwrap();
    let mut torn = committed.clone();
    torn.extend_from_slice(b"uncommitted");
    std::fs::write(&content_file, torn).unwrap();

    let recorder = Recorder::open(config("http://127.0.0.1:9", &data), key)
        .await
        .unwrap();
    recorder.record("m", b"in-2", b"out-2", None).await.unwrap();
    within("flush", recorder.flush()).await.unwrap();
    let file = std::fs::read(&content_file).unwrap();
    assert_eq!(&file[..committed.len()], committed.as_slice());
    assert!(
        file[committed.len()..].starts_with(b"in-2out-2"),
        "the next batch starts where the last committed one ended"
    );
    let count = |needle: &[u8]| file.windows(needle.len()).filter(|w| *w == needle).count();
    assert_eq!(count(b"uncommitted"), 0, "the torn batch is cut off");
    for content in [&b"in-0out-0"[..], b"in-1out-1meta-1", b"in-2out-2"] {
        assert_eq!(count(content), 1, "each record's content once");
    }
    // Each batch's body follows its content, and is what the outbox delivers.
    assert_eq!(
        count(b"\"sequence\":2"),
        1,
        "the last batch's body is in the file"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&content_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "raw content is private to its user");
    }
}

/// Waits until the server has checkpointed the record, then discloses its input.
async fn disclose_input(recorder: &Recorder, leaf_hash: chaperone_core::B256) -> Vec<u8> {
    let disclosure = within("a checkpoint", async {
        loop {
            match recorder.disclose(leaf_hash, &[CommitmentKind::Input]).await {
                Ok(d) => break d,
                Err(Error::Refused {
                    code: ErrorCode::NotCheckpointed,
                    ..
                }) => tokio::time::sleep(Duration::from_millis(200)).await,
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await;
    disclosure.bundle.disclosed[0].content.to_vec()
}

#[tokio::test]
async fn rows_from_before_batch_openings_and_the_content_file_are_delivered_disclosed_and_forgotten()
 {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let data = private_file("agent");
    let key = Secp256k1Signer::random().unwrap();
    let recorder = Recorder::open(config(&url, &data), key.clone())
        .await
        .unwrap();
    let recorded = recorder
        .record("m", b"legacy prompt", b"legacy answer", None)
        .await
        .unwrap();
    within("flush", recorder.flush()).await.unwrap();
    recorder.shutdown().await.unwrap();

    // Rewrite the file as SDK migrations 0001-0003 left a batch persisted before the content
    // file: content, salts and body in rows, no batch_openings.
    let content_file = data.with_extension("db-content");
    let file = std::fs::read(&content_file).unwrap();
    let mut db = local(&data).await;
    let (packed, offset): (Vec<u8>, i64) =
        sqlx::query_as("SELECT openings, content_offset FROM batch_openings")
            .fetch_one(&mut db)
            .await
            .unwrap();
    let (body_offset, body_len): (i64, i64) =
        sqlx::query_as("SELECT body_offset, body_len FROM outbox")
            .fetch_one(&mut db)
            .await
            .unwrap();
    let at = |start: i64, len: usize| file[start as usize..start as usize + len].to_vec();
    let (input_len, output_len) = (b"legacy prompt".len(), b"legacy answer".len());
    for undo in [
        "DROP TABLE batch_openings",
        "DROP INDEX outbox_by_sequence",
        "CREATE INDEX openings_leaf_prefix ON openings (substr(leaf_hash, 1, 8))",
        "DELETE FROM _sqlx_migrations WHERE version = 4",
    ] {
        sqlx::query(undo).execute(&mut db).await.unwrap();
    }
    sqlx::query(
        "INSERT INTO openings (leaf_hash, agent, sequence, batch_id, model, input_salt, input, \
         output_salt, output) VALUES ($1, $2, 0, 1, 'm', $3, $4, $5, $6)",
    )
    .bind(recorded.leaf_hash.as_slice())
    .bind(key.address().to_string())
    .bind(&packed[..32])
    .bind(at(offset, input_len))
    .bind(&packed[32..64])
    .bind(at(offset + input_len as i64, output_len))
    .execute(&mut db)
    .await
    .unwrap();
    sqlx::query("UPDATE outbox SET body = $1, body_offset = NULL, body_len = NULL")
        .bind(at(body_offset, body_len as usize))
        .execute(&mut db)
        .await
        .unwrap();
    std::fs::write(&content_file, b"").unwrap();

    let server = Server::start(port, None, &[key.address()]).await;
    let recorder = Recorder::open(config(&url, &data), key.clone())
        .await
        .unwrap();
    within("sync", recorder.sync()).await.unwrap();
    assert_eq!(server.sequences(key.address()).await, vec![0]);
    assert_eq!(
        disclose_input(&recorder, recorded.leaf_hash).await,
        b"legacy prompt"
    );
    assert_eq!(
        recorder.records().await.unwrap(),
        vec![(0, recorded.leaf_hash, "m".to_owned())]
    );
    recorder.forget(recorded.leaf_hash).await.unwrap();
    assert!(matches!(
        recorder
            .disclose(recorded.leaf_hash, &[CommitmentKind::Input])
            .await,
        Err(Error::Forgotten(_))
    ));
}

#[tokio::test]
async fn a_batch_is_one_row_of_openings_and_its_records_are_found_by_leaf_hash() {
    // No server: persisting and looking up are local.
    let data = private_file("agent");
    let recorder = Recorder::open(
        config("http://127.0.0.1:9", &data),
        Secp256k1Signer::random().unwrap(),
    )
    .await
    .unwrap();
    let mut recorded = Vec::new();
    for i in 0..5u32 {
        let input = format!("prompt {i}");
        let metadata = (i == 4).then_some(&b"{}"[..]);
        recorded.push(
            recorder
                .record(&format!("model-{i}"), input.as_bytes(), b"answer", metadata)
                .await
                .unwrap(),
        );
        if i == 2 {
            within("flush", recorder.flush()).await.unwrap();
        }
    }
    within("flush", recorder.flush()).await.unwrap();

    let mut db = local(&data).await;
    let batches: Vec<(i64, Vec<u8>, Vec<u8>)> = sqlx::query_as(
        "SELECT first_sequence, leaf_hashes, openings FROM batch_openings ORDER BY batch_id",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert_eq!(batches.len(), 2, "two batches, one row each");
    assert_eq!(batches[1].0, 3);
    assert_eq!(
        batches[1].1,
        [recorded[3].leaf_hash.0, recorded[4].leaf_hash.0].concat()
    );
    assert_eq!(batches[1].2.len(), 2 * 108, "salts and lengths per record");
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM openings")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(rows, 0, "no row per record");
    let listed = recorder.records().await.unwrap();
    assert_eq!(
        listed,
        (0..5)
            .map(|i| (i, recorded[i as usize].leaf_hash, format!("model-{i}")))
            .collect::<Vec<_>>()
    );

    // Found by leaf hash alone: in the first batch, the last, and not at all.
    recorder.forget(recorded[1].leaf_hash).await.unwrap();
    recorder.forget(recorded[4].leaf_hash).await.unwrap();
    assert!(matches!(
        recorder.forget(chaperone_core::B256::repeat_byte(7)).await,
        Err(Error::UnknownRecord(_))
    ));
    let content = std::fs::read(data.with_extension("db-content")).unwrap();
    for (forgotten, kept) in [("prompt 1", "prompt 0"), ("prompt 4", "prompt 3")] {
        let found = |text: &str| content.windows(8).any(|w| w == text.as_bytes());
        assert!(
            !found(forgotten) && found(kept),
            "{forgotten} erased, {kept} kept"
        );
    }
}

#[tokio::test]
async fn a_full_outbox_makes_record_wait_instead_of_growing() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let data = private_file("agent");
    let mut config = config(&url, &data);
    config.queue = 4;
    config.max_batch = 5;
    config.linger = Duration::from_millis(1);
    config.max_undelivered = 10;
    let key = Secp256k1Signer::random().unwrap();
    let agent = key.address();
    let recorder = Arc::new(Recorder::open(config, key).await.unwrap());
    let returned = Arc::new(AtomicU64::new(0));
    let producer = {
        let (recorder, returned) = (recorder.clone(), returned.clone());
        tokio::spawn(async move {
            for _ in 0..100 {
                recorder.record("m", b"in", b"out", None).await.unwrap();
                returned.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stuck_at = returned.load(Ordering::SeqCst);
    // At most: the outbox limit (10, reached in batches of up to 5), one batch being
    // assembled (5) and the queue (4).
    assert!(
        stuck_at <= 10 + 5 + 4,
        "record kept returning with the server away: {stuck_at}"
    );
    assert!(!producer.is_finished());
    assert!(recorder.progress().persisted <= 15);

    let server = Server::start(port, None, &[agent]).await;
    within("the producer", producer).await.unwrap();
    within("sync", recorder.sync()).await.unwrap();
    assert_eq!(server.sequences(recorder.agent()).await.len(), 100);
}

#[tokio::test]
async fn disclose_proves_a_record_and_forget_shreds_it() {
    let key = Secp256k1Signer::random().unwrap();
    let server = Server::start(0, None, &[key.address()]).await;
    let data = private_file("agent");
    let recorder = Recorder::open(config(&server.url, &data), key)
        .await
        .unwrap();
    let secret = b"the customer's account number is 12345678";
    let recorded = recorder
        .record("model-x", secret, b"answer", Some(b"{\"tokens\":3}"))
        .await
        .unwrap();
    recorder
        .record("model-x", b"second", b"answer", None)
        .await
        .unwrap();
    within("sync", recorder.sync()).await.unwrap();

    let disclosure = within("a checkpoint", async {
        loop {
            match recorder
                .disclose(
                    recorded.leaf_hash,
                    &[CommitmentKind::Input, CommitmentKind::Metadata],
                )
                .await
            {
                Ok(d) => break d,
                Err(Error::Refused {
                    code: ErrorCode::NotCheckpointed,
                    ..
                }) => tokio::time::sleep(Duration::from_millis(200)).await,
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await;
    assert_eq!(disclosure.bundle.disclosed[0].content.as_ref(), secret);
    let salt = disclosure.bundle.disclosed[0].salt.0;
    let verifier = CheckpointVerifier {
        name: server.service.origin.clone(),
        address: server.operator.address(),
    };
    let verified = disclosure.bundle.verify(&verifier).unwrap();
    assert_eq!(verified.leaf_hash, recorded.leaf_hash);
    assert!(disclosure.anchor.is_none(), "this server has no chain");
    // A disclosure file holds content and salts: its owner's alone until handed over, even
    // where a file was before.
    let file = data.with_extension("disclosure.json");
    std::fs::write(&file, "older").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        disclosure.write(&file).unwrap();
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the disclosure file is private");
    }
    assert_eq!(
        chaperone_sdk::Disclosure::read(&file).unwrap().bundle,
        disclosure.bundle
    );
    std::fs::remove_file(&file).unwrap();
    // A symlink planted where the disclosure goes is replaced, its target untouched.
    let target = data.with_extension("victim");
    std::fs::write(&target, "someone else's file").unwrap();
    std::os::unix::fs::symlink(&target, &file).unwrap();
    disclosure.write(&file).unwrap();
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "someone else's file"
    );
    assert!(
        !std::fs::symlink_metadata(&file)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    std::fs::remove_file(&file).unwrap();

    // The content never reached the server.
    let server_bytes = std::fs::read(&server.database).unwrap();
    assert!(!server_bytes.windows(secret.len()).any(|w| w == secret));

    recorder.forget(recorded.leaf_hash).await.unwrap();
    match recorder
        .disclose(recorded.leaf_hash, &[CommitmentKind::Input])
        .await
    {
        Err(Error::Forgotten(leaf)) => assert_eq!(leaf, recorded.leaf_hash),
        other => panic!("expected Forgotten, got {other:?}"),
    }
    recorder.shutdown().await.unwrap();
    // secure_delete overwrote the old salts in the SQLite file itself, forget the content in
    // the content file.
    let local_bytes = std::fs::read(&data).unwrap();
    let wal = std::fs::read(data.with_extension("db-wal")).unwrap_or_default();
    let content = std::fs::read(data.with_extension("db-content")).unwrap();
    assert!(
        content.windows(6).any(|w| w == b"second"),
        "the content file holds the other record's content"
    );
    for bytes in [&local_bytes, &wal, &content] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret),
            "the secret survived forget"
        );
    }
    for bytes in [&local_bytes, &wal] {
        assert!(
            !bytes.windows(32).any(|w| w == salt),
            "the input salt survived forget"
        );
    }
}

#[tokio::test]
async fn a_batch_the_server_refuses_is_reported_not_retried_forever() {
    let key = Secp256k1Signer::random().unwrap();
    let server = Server::start(0, None, &[key.address()]).await;
    let first = Recorder::open(config(&server.url, &private_file("agent")), key.clone())
        .await
        .unwrap();
    first.record("m", b"a", b"b", None).await.unwrap();
    within("sync", first.sync()).await.unwrap();
    // The same agent key with a fresh local file restarts its chain at sequence 0: a fork of
    // its own history, which the log refuses.
    let forked = Recorder::open(config(&server.url, &private_file("agent")), key)
        .await
        .unwrap();
    forked.record("m", b"other", b"b", None).await.unwrap();
    match within("sync", forked.sync()).await {
        Err(Error::Rejected { message, .. }) => assert!(message.starts_with("4"), "{message}"),
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(server.sequences(first.agent()).await, vec![0]);
}
