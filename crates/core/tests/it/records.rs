use chaperone_core::{
    Address, B256, Commitment, Error, MAX_MODEL_ID_LEN, Record, Secp256k1Signer, SignedBatch,
};
use proptest::prelude::*;

pub fn record(agent: Address, sequence: u64, previous: B256) -> Record {
    Record {
        agent,
        sequence,
        timestamp_ms: 1_750_000_000_000 + sequence,
        model: "gpt-4o-2024-08-06".into(),
        input: Commitment(B256::repeat_byte(0x11)),
        output: Commitment(B256::repeat_byte(0x22)),
        metadata: (sequence % 2 == 1).then_some(Commitment(B256::repeat_byte(0x33))),
        previous,
    }
}

/// A chain of `n` records from `agent`, starting at sequence 0.
pub fn chain(agent: Address, n: u64) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    for s in 0..n {
        let previous = out
            .last()
            .map(|r| r.leaf_hash().unwrap())
            .unwrap_or(B256::ZERO);
        out.push(record(agent, s, previous));
    }
    out
}

#[test]
fn encoding_layout_is_as_documented() {
    let r = record(Address::repeat_byte(0xaa), 1, B256::repeat_byte(0x44));
    let bytes = r.encode().unwrap();
    assert_eq!(bytes.len(), r.encoded_len());
    assert_eq!(bytes[0], 1, "version");
    assert_eq!(&bytes[1..21], &[0xaa; 20], "agent");
    assert_eq!(&bytes[21..29], &1u64.to_be_bytes(), "sequence");
    assert_eq!(
        &bytes[29..37],
        &1_750_000_000_001u64.to_be_bytes(),
        "timestamp"
    );
    assert_eq!(bytes[37] as usize, r.model.len(), "model length");
    let after_model = 38 + r.model.len();
    assert_eq!(&bytes[38..after_model], r.model.as_bytes());
    assert_eq!(bytes[after_model + 64], 1, "metadata flag");
    assert_eq!(
        &bytes[bytes.len() - 32..],
        &[0x44; 32],
        "previous hash last"
    );
}

proptest! {
    #[test]
    fn encoding_round_trips(
        agent in any::<[u8; 20]>(), sequence in 1u64.., timestamp_ms in any::<u64>(),
        model in "[a-zA-Z0-9._/-]{1,60}", input in any::<[u8; 32]>(), output in any::<[u8; 32]>(),
        metadata in proptest::option::of(any::<[u8; 32]>()), previous in any::<[u8; 32]>(),
    ) {
        prop_assume!(previous != [0; 32]);
        let r = Record {
            agent: Address::from(agent), sequence, timestamp_ms, model,
            input: Commitment(B256::from(input)), output: Commitment(B256::from(output)),
            metadata: metadata.map(|m| Commitment(B256::from(m))), previous: B256::from(previous),
        };
        let bytes = r.encode().unwrap();
        prop_assert_eq!(Record::decode(&bytes).unwrap(), r);
    }

    #[test]
    fn decoding_never_accepts_a_different_encoding(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        // Whatever decodes must re-encode to exactly the same bytes (canonical).
        if let Ok(r) = Record::decode(&bytes) {
            prop_assert_eq!(r.encode().unwrap(), bytes);
        }
    }
}

#[test]
fn non_canonical_encodings_are_rejected_with_the_reason() {
    let r = record(Address::repeat_byte(1), 1, B256::repeat_byte(9));
    let good = r.encode().unwrap();
    let reject = |bytes: &[u8], why: &str| match Record::decode(bytes) {
        Err(Error::RecordEncoding(msg)) => assert!(msg.contains(why), "{msg} !~ {why}"),
        other => panic!("expected rejection ({why}), got {other:?}"),
    };

    let mut trailing = good.clone();
    trailing.push(0);
    reject(&trailing, "trailing");
    reject(&good[..good.len() - 1], "truncated");
    reject(&[], "truncated");
    let mut version = good.clone();
    version[0] = 2;
    reject(&version, "version");
    let mut flag = good.clone();
    flag[38 + r.model.len() + 64] = 2;
    reject(&flag, "flag");
    let mut utf8 = good.clone();
    utf8[38] = 0xff;
    reject(&utf8, "UTF-8");
    let mut empty_model = vec![1u8];
    empty_model.extend_from_slice(&good[1..37]);
    empty_model.push(0);
    empty_model.extend_from_slice(&good[38 + r.model.len()..]);
    reject(&empty_model, "model id");
    let mut genesis_with_previous = record(Address::repeat_byte(1), 0, B256::ZERO)
        .encode()
        .unwrap();
    let n = genesis_with_previous.len();
    genesis_with_previous[n - 1] = 1;
    reject(&genesis_with_previous, "first record");
}

#[test]
fn oversized_model_id_is_refused_on_encode() {
    let mut r = record(Address::ZERO, 0, B256::ZERO);
    r.model = "m".repeat(MAX_MODEL_ID_LEN + 1);
    assert!(matches!(r.encode(), Err(Error::InvalidRecord(_))));
}

#[test]
fn signed_batch_verifies_and_rejects_forgery_gaps_and_broken_links() {
    let agent = Secp256k1Signer::random().unwrap();
    let records = chain(agent.address(), 5);
    let batch = SignedBatch::sign(records.clone(), &agent).unwrap();
    let leaves = batch.verify().unwrap();
    assert_eq!(leaves.len(), 5);
    assert!(batch.signature.normalize_s().is_none(), "low-s signature");

    // Forged: signed by another key.
    let mallory = Secp256k1Signer::random().unwrap();
    let mut forged = batch.clone();
    forged.signature = SignedBatch::sign(chain(mallory.address(), 5), &mallory)
        .unwrap()
        .signature;
    assert!(matches!(forged.verify(), Err(Error::WrongSigner { .. })));

    // Tampered record after signing.
    let mut tampered = batch.clone();
    tampered.records[2].timestamp_ms += 1;
    assert!(tampered.verify().is_err());

    // Gap in sequence.
    let mut gap = records.clone();
    gap.remove(2);
    assert!(
        matches!(SignedBatch::sign(gap, &agent), Err(Error::InvalidBatch(m)) if m.contains("sequence"))
    );

    // Wrong previous hash.
    let mut broken = records.clone();
    broken[3].previous = B256::repeat_byte(0xee);
    assert!(
        matches!(SignedBatch::sign(broken, &agent), Err(Error::InvalidBatch(m)) if m.contains("previous"))
    );

    // The last possible sequence followed by another record: an error, not an overflow
    // (which panicked in a debug build and wrapped in a release one).
    let last = Record {
        sequence: u64::MAX,
        timestamp_ms: 1,
        ..record(agent.address(), 1, B256::repeat_byte(1))
    };
    let after = record(agent.address(), 1, last.leaf_hash().unwrap());
    assert!(
        matches!(SignedBatch::sign(vec![last, after], &agent), Err(Error::InvalidBatch(m)) if m.contains("last possible sequence"))
    );

    // Record of another agent inside the batch.
    let mut mixed = records;
    mixed[1].agent = mallory.address();
    assert!(SignedBatch::sign(mixed, &agent).is_err());
}

#[test]
fn a_batch_signed_over_known_leaf_hashes_verifies_only_if_they_are_the_records() {
    let agent = Secp256k1Signer::random().unwrap();
    let records = chain(agent.address(), 4);
    let leaves: Vec<B256> = records.iter().map(|r| r.leaf_hash().unwrap()).collect();
    let batch = SignedBatch::sign_hashed(records.clone(), &leaves, &agent).unwrap();
    assert_eq!(batch.verify().unwrap(), leaves);
    assert_eq!(batch, SignedBatch::sign(records.clone(), &agent).unwrap());

    let mut wrong = leaves.clone();
    wrong.swap(1, 2);
    let batch = SignedBatch::sign_hashed(records.clone(), &wrong, &agent).unwrap();
    assert!(matches!(batch.verify(), Err(Error::WrongSigner { .. })));
    assert!(matches!(
        SignedBatch::sign_hashed(records, &leaves[..3], &agent),
        Err(Error::InvalidBatch(_))
    ));
}

#[test]
fn membership_proves_one_record_of_a_signed_batch() {
    let agent = Secp256k1Signer::random().unwrap();
    let batch = SignedBatch::sign(chain(agent.address(), 7), &agent).unwrap();
    for i in 0..7 {
        let m = batch.membership(i).unwrap();
        m.verify(&batch.records[i]).unwrap();
        if i > 0 {
            assert!(
                m.verify(&batch.records[i - 1]).is_err(),
                "another record must not verify"
            );
        }
    }
}
