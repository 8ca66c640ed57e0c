use chaperone_core::{Commitment, CommitmentKind, Opening, Salt};

#[test]
fn opening_verifies_and_binds_kind_salt_and_content() {
    let opening = Opening::new(CommitmentKind::Input, b"what is 2+2?".to_vec()).unwrap();
    let c = opening.commitment();
    c.verify(CommitmentKind::Input, opening.salt(), opening.content())
        .unwrap();
    // Same content and salt under another kind: another commitment.
    assert!(
        c.verify(CommitmentKind::Output, opening.salt(), opening.content())
            .is_err()
    );
    assert!(
        c.verify(CommitmentKind::Input, &Salt([0; 32]), opening.content())
            .is_err()
    );
    assert!(
        c.verify(CommitmentKind::Input, opening.salt(), b"what is 2+3?")
            .is_err()
    );
}

#[test]
fn salts_are_random_so_equal_content_gives_distinct_commitments() {
    let a = Opening::new(CommitmentKind::Output, b"yes".to_vec()).unwrap();
    let b = Opening::new(CommitmentKind::Output, b"yes".to_vec()).unwrap();
    assert_ne!(a.salt(), b.salt());
    assert_ne!(a.commitment(), b.commitment());
}

#[test]
fn commitment_is_sha256_of_tag_salt_content() {
    use sha2_ct::Digest;
    let salt = Salt([7; 32]);
    let mut h = sha2_ct::Sha256::new();
    h.update(b"chaperone/commitment/v1/input\0");
    h.update([7u8; 32]);
    h.update(b"hello");
    let expected: [u8; 32] = h.finalize().into();
    assert_eq!(
        Commitment::compute(CommitmentKind::Input, &salt, b"hello")
            .0
            .0,
        expected
    );
}

#[test]
fn debug_output_never_shows_content_or_salt() {
    let opening = Opening::new(CommitmentKind::Input, b"SECRET-PROMPT-MARKER".to_vec()).unwrap();
    let shown = format!("{opening:?} {:?}", opening.salt());
    assert!(!shown.contains("SECRET-PROMPT-MARKER"), "{shown}");
    assert!(
        shown.contains("redacted") && shown.contains("content_len"),
        "{shown}"
    );
}
