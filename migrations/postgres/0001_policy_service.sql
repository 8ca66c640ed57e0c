-- The policy service's tables (PostgreSQL dialect; keep in step with ../sqlite).
-- Addresses and hashes are 0x-prefixed lowercase hex; amounts are decimal strings (they exceed
-- 64 bits); times are Unix seconds.

CREATE TABLE wallets (
    address     TEXT PRIMARY KEY,
    chain_id    BIGINT NOT NULL,
    agent       TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Every version of every wallet's policy; decisions name the version and hash they used.
CREATE TABLE policies (
    wallet      TEXT NOT NULL REFERENCES wallets(address),
    version     BIGINT NOT NULL,
    hash        TEXT NOT NULL,
    document    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (wallet, version)
);

-- One row per distinct request (request_id = the EIP-712 digest): replays return this row.
CREATE TABLE decisions (
    request_id      TEXT PRIMARY KEY,
    wallet          TEXT NOT NULL REFERENCES wallets(address),
    created_at      BIGINT NOT NULL,
    valid_until     BIGINT NOT NULL,
    nonce           TEXT,
    request         TEXT NOT NULL,
    outcome         TEXT NOT NULL CHECK (outcome IN ('approved', 'pending_approval', 'denied')),
    reasons         TEXT NOT NULL,
    policy_version  BIGINT NOT NULL,
    policy_hash     TEXT NOT NULL,
    signature       TEXT
);
CREATE INDEX decisions_by_wallet ON decisions (wallet, created_at);
CREATE INDEX decisions_by_nonce ON decisions (wallet, nonce);

-- Spend reserved by an approval, in the transaction that decided it; settled when the execution
-- is confirmed, released when it reverts or valid_until passes.
CREATE TABLE spend_reservations (
    id          BIGSERIAL PRIMARY KEY,
    request_id  TEXT NOT NULL REFERENCES decisions(request_id),
    wallet      TEXT NOT NULL REFERENCES wallets(address),
    token       TEXT NOT NULL,
    amount      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('reserved', 'settled', 'released'))
);
CREATE INDEX reservations_by_wallet ON spend_reservations (wallet, created_at);
CREATE INDEX reservations_by_request ON spend_reservations (request_id);

CREATE TABLE approvals (
    request_id  TEXT PRIMARY KEY REFERENCES decisions(request_id),
    status      TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied')),
    expires_at  BIGINT NOT NULL,
    decided_by  TEXT,
    decided_at  BIGINT
);

-- Bearer tokens are stored as SHA-256 hashes only.
CREATE TABLE api_tokens (
    token_hash  TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'approver', 'auditor')),
    created_at  BIGINT NOT NULL
);
