//! Cross-check of chaperone-core's Merkle log with the AuditLog contract: Rust inclusion proofs
//! verify in `verifyInclusion`, Rust consistency proofs are accepted by `anchor`, and a forked
//! history is rejected.

use alloy::primitives::{B256, FixedBytes};
use chaperone_chain::AuditLog;
use chaperone_core::{MerkleLog, leaf_hash};

use crate::Fixture;

fn log_of(n: u64, fork_at: Option<u64>) -> MerkleLog {
    let mut log = MerkleLog::new();
    for i in 0..n {
        let data = if Some(i) == fork_at {
            b"forged".to_vec()
        } else {
            i.to_be_bytes().to_vec()
        };
        log.append(&data);
    }
    log
}

#[tokio::test]
async fn rust_proofs_verify_on_chain_and_forks_are_rejected() {
    let fx = Fixture::new().await;
    let audit = AuditLog::new(fx.deployment.audit_log, &fx.provider);
    let operator = fx.devnet.signer(0).address();
    let receipt = audit
        .createLog(operator)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let log_id: FixedBytes<32> = receipt.decoded_log::<AuditLog::LogCreated>().unwrap().logId;

    let log = log_of(300, None);
    let sizes = [5u64, 17, 64, 100, 257, 300];
    let mut previous = 0;
    for &size in &sizes {
        let proof = if previous == 0 {
            vec![]
        } else {
            log.consistency_proof(previous, size).unwrap().path
        };
        let root = log.root_at(size).unwrap();
        let r = audit
            .anchor(log_id, size, root, proof)
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(r.status(), "anchor {size}");
        let event = r.decoded_log::<AuditLog::Anchored>().unwrap();
        assert_eq!((event.size, event.root), (size, root));
        previous = size;
    }
    let latest = audit.latest(log_id).call().await.unwrap();
    assert_eq!((latest.size, latest.root), (300, log.root()));

    // Inclusion proofs from Rust verify against every anchored size; tampered ones do not.
    for &size in &sizes {
        for index in [0, size / 2, size - 1] {
            let proof = log.inclusion_proof(index, size).unwrap().path;
            let leaf = leaf_hash(&index.to_be_bytes());
            assert!(
                audit
                    .verifyInclusion(log_id, size, index, leaf, proof.clone())
                    .call()
                    .await
                    .unwrap()
            );
            let mut bad = proof.clone();
            if let Some(first) = bad.first_mut() {
                first.0[0] ^= 1;
                assert!(
                    !audit
                        .verifyInclusion(log_id, size, index, leaf, bad)
                        .call()
                        .await
                        .unwrap()
                );
            }
            let wrong_leaf = leaf_hash(b"not in the log");
            assert!(
                !audit
                    .verifyInclusion(log_id, size, index, wrong_leaf, proof)
                    .call()
                    .await
                    .unwrap()
            );
        }
    }

    // A history rewritten at leaf 3, extended to 350 with its own (valid-looking) proof: rejected.
    let forked = log_of(350, Some(3));
    let proof = forked.consistency_proof(300, 350).unwrap().path;
    let err = audit
        .anchor(log_id, 350, forked.root(), proof)
        .call()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.as_decoded_interface_error::<AuditLog::AuditLogErrors>(),
            Some(AuditLog::AuditLogErrors::InvalidConsistencyProof(_))
        ),
        "{err}"
    );

    // Going back in size, or changing the root at the anchored size: rejected.
    let err = audit
        .anchor(log_id, 299, log.root_at(299).unwrap(), vec![])
        .call()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.as_decoded_interface_error::<AuditLog::AuditLogErrors>(),
            Some(AuditLog::AuditLogErrors::SizeDecreased(_))
        ),
        "{err}"
    );
    let err = audit
        .anchor(log_id, 300, B256::repeat_byte(9), vec![])
        .call()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.as_decoded_interface_error::<AuditLog::AuditLogErrors>(),
            Some(AuditLog::AuditLogErrors::RootMismatch(_))
        ),
        "{err}"
    );

    // The honest continuation is still accepted.
    let honest = log_of(350, None);
    let proof = honest.consistency_proof(300, 350).unwrap().path;
    audit
        .anchor(log_id, 350, honest.root(), proof)
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    assert_eq!(audit.latest(log_id).call().await.unwrap().size, 350);
}
