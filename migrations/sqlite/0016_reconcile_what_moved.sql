-- Reconciliation by what moved, not by a nonce alone (the red-team review of issue 29: H1, H2,
-- L3; keep in step with ../postgres).
--
-- What an approved x402 authorization may pay: the one token transfer its nonce may make
-- (token, recipient, amount in decimal) and the first second it may be used (valid_until is
-- the last). The indexer compares the token's Transfer from the wallet with it. NULL for an
-- execute (its Executed event names the digest of the calls, the request id) and for decisions
-- made before this migration, which are matched by their nonce as before: their co-signatures
-- outlive the upgrade by at most the policy's max_valid_for.
ALTER TABLE decisions ADD COLUMN pays_token TEXT;
ALTER TABLE decisions ADD COLUMN pays_to TEXT;
ALTER TABLE decisions ADD COLUMN pays_value TEXT;
ALTER TABLE decisions ADD COLUMN valid_from BIGINT;

-- Why an outflow is unauthorized: no_decision (nothing approved it), other_payment (an
-- approved nonce moved something else than what was approved), outside_validity (used when
-- the approval was not valid).
ALTER TABLE unauthorized_spends ADD COLUMN reason TEXT NOT NULL DEFAULT 'no_decision';

-- Which Transfer paid each approved Permit2 payment (Permit2 emits no event: the indexer pairs
-- the used nonce with the token's Transfer from the wallet to the approved recipient, of the
-- approved amount, within the approval's validity). A Permit2 nonce used without its transfer
-- was spent on something else. A reorganisation forgets the pairs above the fork point.
CREATE TABLE permit2_transfers (
    request_id   TEXT PRIMARY KEY REFERENCES decisions(request_id),
    block_number BIGINT NOT NULL,
    log_index    BIGINT NOT NULL,
    tx_hash      TEXT NOT NULL,
    UNIQUE (block_number, log_index)
);

-- Acknowledgements of unauthorized spends, kept apart from the spends so that a
-- reorganisation, which forgets the spends above the fork point, does not raise them again
-- when the new branch mines the same transaction. Keyed by what was spent and the transaction
-- ('' for Permit2, which names none): a different transaction spending the same nonce on the
-- new branch is a new alert.
CREATE TABLE spend_acknowledgements (
    wallet          TEXT NOT NULL,
    kind            TEXT NOT NULL,
    contract        TEXT NOT NULL,
    nonce           TEXT NOT NULL,
    tx_hash         TEXT NOT NULL,
    acknowledged_by TEXT NOT NULL,
    acknowledged_at BIGINT NOT NULL,
    PRIMARY KEY (wallet, kind, contract, nonce, tx_hash)
);
INSERT INTO spend_acknowledgements
    SELECT wallet, kind, contract, nonce, COALESCE(tx_hash, ''), acknowledged_by, acknowledged_at
    FROM unauthorized_spends WHERE acknowledged_at IS NOT NULL;
