use base64::{Engine, engine::general_purpose::STANDARD};
use chaperone_core::{
    B256, Checkpoint, CheckpointVerifier, Error, Secp256k1Signer, SignedCheckpoint,
    checkpoint_key_id,
};

fn setup() -> (Checkpoint, Secp256k1Signer, CheckpointVerifier) {
    let operator = Secp256k1Signer::random().unwrap();
    let verifier = CheckpointVerifier {
        name: "chaperone.dev/operator".into(),
        address: operator.address(),
    };
    let checkpoint = Checkpoint {
        origin: "chaperone.dev/31337/0x5FbDB2315678afecb367f032d93F642f64180aa3/log-1".into(),
        size: 1234,
        root: B256::repeat_byte(0xab),
    };
    (checkpoint, operator, verifier)
}

#[test]
fn note_has_the_c2sp_shape_and_verifies() {
    let (checkpoint, operator, verifier) = setup();
    let signed = checkpoint.sign(&verifier.name, &operator).unwrap();
    let root_b64 = STANDARD.encode([0xab; 32]);
    let expected_prefix = format!(
        "{}\n1234\n{root_b64}\n\n\u{2014} chaperone.dev/operator ",
        checkpoint.origin
    );
    assert!(signed.note.starts_with(&expected_prefix), "{}", signed.note);
    assert!(signed.note.ends_with('\n'));
    // Signature blob = 4-byte key id ‖ 65-byte signature.
    let blob = signed.note.trim_end().rsplit(' ').next().unwrap();
    let blob = STANDARD.decode(blob).unwrap();
    assert_eq!(blob.len(), 69);
    assert_eq!(
        blob[..4],
        checkpoint_key_id(&verifier.name, operator.address())
    );

    let parsed = SignedCheckpoint::verify(&signed.note, &verifier).unwrap();
    assert_eq!(parsed.checkpoint, checkpoint);
}

#[test]
fn signatures_from_unknown_keys_are_ignored_but_not_enough() {
    let (checkpoint, operator, verifier) = setup();
    let stranger = Secp256k1Signer::random().unwrap();
    let by_stranger = checkpoint.sign("someone.else/witness", &stranger).unwrap();
    assert!(matches!(
        SignedCheckpoint::verify(&by_stranger.note, &verifier),
        Err(Error::CheckpointUnsigned(_))
    ));

    // A note with our signature plus an unknown one verifies (signed-note: ignore unknown keys).
    let ours = checkpoint.sign(&verifier.name, &operator).unwrap();
    let theirs_line = by_stranger.note.split("\n\n").nth(1).unwrap();
    let cosigned = format!("{}{theirs_line}", ours.note);
    SignedCheckpoint::verify(&cosigned, &verifier).unwrap();
}

#[test]
fn a_note_with_no_signatures_is_rejected() {
    let (checkpoint, _, verifier) = setup();
    let body = checkpoint.body().unwrap();
    assert!(SignedCheckpoint::verify(&format!("{body}\n"), &verifier).is_err());
    assert!(SignedCheckpoint::verify(&body, &verifier).is_err());
}

#[test]
fn a_signature_by_the_right_name_but_wrong_key_is_rejected() {
    let (checkpoint, _, verifier) = setup();
    let impostor = Secp256k1Signer::random().unwrap();
    let signed = checkpoint.sign(&verifier.name, &impostor).unwrap();
    // Different key id: treated as unknown, so the note is unsigned for us.
    assert!(SignedCheckpoint::verify(&signed.note, &verifier).is_err());
}

#[test]
fn tampered_body_is_rejected() {
    let (checkpoint, operator, verifier) = setup();
    let signed = checkpoint.sign(&verifier.name, &operator).unwrap();
    let tampered = signed.note.replacen("\n1234\n", "\n1235\n", 1);
    assert!(matches!(
        SignedCheckpoint::verify(&tampered, &verifier),
        Err(Error::WrongSigner { .. })
    ));
}

#[test]
fn malformed_bodies_are_rejected() {
    let (_, operator, verifier) = setup();
    for (body, why) in [
        ("origin\n01\nAAAA\n", "canonical decimal"),
        ("origin\n12\nnot-base64\n", "base64"),
        ("origin\n12\n", "root"),
        ("\n12\nAAAA\n", "origin"),
    ] {
        let sig = operator.sign_message(body.as_bytes()).unwrap();
        let mut blob = checkpoint_key_id(&verifier.name, operator.address()).to_vec();
        blob.extend_from_slice(&sig.as_bytes());
        let note = format!(
            "{body}\n\u{2014} {} {}\n",
            verifier.name,
            STANDARD.encode(blob)
        );
        let err = SignedCheckpoint::verify(&note, &verifier)
            .unwrap_err()
            .to_string();
        assert!(err.contains(why), "{body:?}: {err}");
    }
}
