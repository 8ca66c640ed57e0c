use chaperone_core::{
    Checkpoint, CheckpointVerifier, CommitmentKind, DisclosedContent, DisclosureBundle, Error,
    MerkleLog, Opening, Record, Secp256k1Signer, SignedBatch,
};

struct World {
    bundle: DisclosureBundle,
    verifier: CheckpointVerifier,
}

/// An agent logs three calls in one batch among other leaves; it discloses the second one.
fn world() -> World {
    let agent = Secp256k1Signer::random().unwrap();
    let operator = Secp256k1Signer::random().unwrap();
    let verifier = CheckpointVerifier {
        name: "ops".into(),
        address: operator.address(),
    };

    let mut openings = Vec::new();
    let mut records: Vec<Record> = Vec::new();
    for s in 0..3u64 {
        let input =
            Opening::new(CommitmentKind::Input, format!("prompt {s}").into_bytes()).unwrap();
        let output =
            Opening::new(CommitmentKind::Output, format!("answer {s}").into_bytes()).unwrap();
        let previous = records
            .last()
            .map(|r| r.leaf_hash().unwrap())
            .unwrap_or_default();
        records.push(Record {
            agent: agent.address(),
            sequence: s,
            timestamp_ms: 1_750_000_000_000 + s,
            model: "claude".into(),
            input: input.commitment(),
            output: output.commitment(),
            metadata: None,
            previous,
        });
        openings.push((input, output));
    }
    let batch = SignedBatch::sign(records, &agent).unwrap();

    let mut log = MerkleLog::new();
    log.append(b"someone else's record");
    for leaf in batch.verify().unwrap() {
        log.append_leaf_hash(leaf);
    }
    log.append(b"a later record");
    let checkpoint = Checkpoint {
        origin: "test/log".into(),
        size: log.size(),
        root: log.root(),
    };
    let note = checkpoint.sign("ops", &operator).unwrap().note;

    let (input, output) = &openings[1];
    let bundle = DisclosureBundle {
        record: batch.records[1].clone(),
        disclosed: vec![
            DisclosedContent {
                kind: input.kind(),
                salt: input.salt().clone(),
                content: input.content().to_vec().into(),
            },
            DisclosedContent {
                kind: output.kind(),
                salt: output.salt().clone(),
                content: output.content().to_vec().into(),
            },
        ],
        batch: batch.membership(1).unwrap(),
        inclusion: log.inclusion_proof(2, log.size()).unwrap(),
        checkpoint: note,
    };
    World { bundle, verifier }
}

#[test]
fn a_genuine_bundle_verifies_and_survives_json() {
    let World { bundle, verifier } = world();
    let verified = bundle.verify(&verifier).unwrap();
    assert_eq!(verified.index, 2);
    assert_eq!(verified.checkpoint.size, 5);

    let json = serde_json::to_string(&bundle).unwrap();
    let back: DisclosureBundle = serde_json::from_str(&json).unwrap();
    assert_eq!(back, bundle);
    back.verify(&verifier).unwrap();
}

#[test]
fn every_tampering_is_caught() {
    let World { bundle, verifier } = world();

    let mut b = bundle.clone();
    b.disclosed[0].content = b"prompt 9".to_vec().into();
    assert!(matches!(
        b.verify(&verifier),
        Err(Error::CommitmentMismatch("input"))
    ));

    let mut b = bundle.clone();
    b.disclosed[1].salt.0[0] ^= 1;
    assert!(matches!(
        b.verify(&verifier),
        Err(Error::CommitmentMismatch("output"))
    ));

    let mut b = bundle.clone();
    b.disclosed[1].kind = CommitmentKind::Input;
    assert!(b.verify(&verifier).is_err(), "duplicate kind");

    let mut b = bundle.clone();
    b.disclosed[0].kind = CommitmentKind::Metadata;
    assert!(
        b.verify(&verifier).is_err(),
        "metadata the record does not have"
    );

    let mut b = bundle.clone();
    b.record.timestamp_ms += 1;
    b.disclosed.clear();
    assert!(b.verify(&verifier).is_err(), "record altered");

    let mut b = bundle.clone();
    b.inclusion.index = 3;
    assert!(b.verify(&verifier).is_err(), "wrong log position");

    let mut b = bundle.clone();
    b.batch.index = 0;
    assert!(b.verify(&verifier).is_err(), "wrong batch position");

    let other = CheckpointVerifier {
        name: "ops".into(),
        address: Secp256k1Signer::random().unwrap().address(),
    };
    assert!(
        bundle.verify(&other).is_err(),
        "checkpoint by another operator"
    );
}
