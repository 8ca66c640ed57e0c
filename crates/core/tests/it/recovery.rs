//! Differential tests of signing and recovery: libsecp256k1 (`sign_digest`, `recover_low_s`,
//! the hot paths) against k256 (`sign_digest_k256`, `recover_low_s_k256`), on real signatures
//! and on arbitrary bytes, including the high-s twin of every signature, which both must refuse.

use chaperone_core::{B256, Secp256k1Signer, Signature, U256, recover_low_s, recover_low_s_k256};
use proptest::prelude::*;

/// The curve order n: `n - s` is the high-s twin of `s`.
const ORDER: U256 = U256::from_be_bytes([
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
]);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn both_backends_recover_the_signer_and_refuse_its_high_s_twin(
        key in any::<[u8; 32]>(), digest in any::<[u8; 32]>(),
    ) {
        let Ok(signer) = Secp256k1Signer::from_bytes(&B256::new(key)) else {
            return Ok(()); // zero or beyond the order: not a key
        };
        let digest = B256::new(digest);
        let signature = signer.sign_digest(&digest).unwrap();
        prop_assert_eq!(recover_low_s(&signature, &digest).unwrap(), signer.address());
        prop_assert_eq!(recover_low_s_k256(&signature, &digest).unwrap(), signer.address());

        let twin = Signature::new(signature.r(), ORDER - signature.s(), !signature.v());
        prop_assert!(recover_low_s(&twin, &digest).is_err());
        prop_assert!(recover_low_s_k256(&twin, &digest).is_err());
    }

    #[test]
    fn both_backends_sign_the_same_low_s_signature(
        key in any::<[u8; 32]>(), digest in any::<[u8; 32]>(),
    ) {
        let Ok(signer) = Secp256k1Signer::from_bytes(&B256::new(key)) else {
            return Ok(()); // zero or beyond the order: not a key
        };
        let digest = B256::new(digest);
        let fast = signer.sign_digest(&digest).unwrap();
        prop_assert_eq!(fast, signer.sign_digest_k256(&digest).unwrap());
        prop_assert!(fast.normalize_s().is_none(), "low-s only");
        prop_assert_eq!(recover_low_s(&fast, &digest).unwrap(), signer.address());
    }

    #[test]
    fn both_backends_agree_on_arbitrary_bytes(
        r in any::<[u8; 32]>(), s in any::<[u8; 32]>(), v: bool, digest in any::<[u8; 32]>(),
    ) {
        let signature =
            Signature::new(U256::from_be_bytes(r), U256::from_be_bytes(s), v);
        let digest = B256::new(digest);
        prop_assert_eq!(
            recover_low_s(&signature, &digest).ok(),
            recover_low_s_k256(&signature, &digest).ok()
        );
    }
}

#[test]
fn zero_and_out_of_range_scalars_recover_nothing() {
    let digest = B256::repeat_byte(7);
    for (r, s) in [
        (U256::ZERO, U256::from(1)),
        (U256::from(1), U256::ZERO),
        (ORDER, U256::from(1)),
    ] {
        let signature = Signature::new(r, s, false);
        assert!(recover_low_s(&signature, &digest).is_err(), "r {r}, s {s}");
        assert!(
            recover_low_s_k256(&signature, &digest).is_err(),
            "r {r}, s {s}"
        );
    }
}
