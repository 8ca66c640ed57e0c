-- Reconciliation (keep in step with ../postgres): every on-chain outflow of a registered wallet
-- (an `Executed` call; an EIP-3009 `AuthorizationUsed` or a Permit2 nonce it signed through
-- EIP-1271) that no approved co-sign decision accounts for. Written by the indexer, keyed by
-- what was spent (each wallet nonce, token authorization nonce and Permit2 nonce pays once),
-- so a re-run stores it once; a reorganisation that drops the block drops the row (the new
-- branch is reconciled afresh). Permit2 emits no event: its rows name the block the indexer
-- saw the nonce used by, without a transaction.
CREATE TABLE unauthorized_spends (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    wallet          TEXT NOT NULL REFERENCES wallets(address),
    kind            TEXT NOT NULL CHECK (kind IN ('execute', 'eip3009', 'permit2')),
    block_number    BIGINT NOT NULL,
    log_index       BIGINT NOT NULL,
    tx_hash         TEXT,
    contract        TEXT NOT NULL,
    nonce           TEXT NOT NULL,
    detected_at     BIGINT NOT NULL,
    acknowledged_by TEXT,
    acknowledged_at BIGINT,
    UNIQUE (wallet, kind, contract, nonce)
);
CREATE INDEX unauthorized_spends_open ON unauthorized_spends (id) WHERE acknowledged_at IS NULL;
