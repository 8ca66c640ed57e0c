-- The audit log's tables (PostgreSQL dialect; keep in step with ../sqlite).
-- Hashes and addresses are 0x-prefixed lowercase hex; times are Unix milliseconds (records) or
-- seconds (everything else), as the column names say.

-- The log's right edge: its size and the peaks of its perfect subtrees (JSON array, largest
-- first). One row; appenders lock it, so the log has one writer at a time.
CREATE TABLE log_state (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    size    BIGINT NOT NULL,
    peaks   TEXT NOT NULL
);
INSERT INTO log_state (id, size, peaks) VALUES (1, 0, '[]');

-- Every perfect subtree root: node_key = level * 2^56 + index. A proof reads at most
-- 2·log2(n) of them, in one query.
CREATE TABLE log_nodes (
    node_key    BIGINT PRIMARY KEY,
    hash        TEXT NOT NULL
);

-- One agent signature covers a batch (the RFC 9162 root of its records' leaf hashes).
CREATE TABLE record_batches (
    batch_root      TEXT PRIMARY KEY,
    agent           TEXT NOT NULL,
    first_index     BIGINT NOT NULL,
    size            BIGINT NOT NULL,
    signature       TEXT NOT NULL,
    received_at     BIGINT NOT NULL
);

-- Each record: its canonical encoding (commitments only, never content) and where it sits.
CREATE TABLE records (
    leaf_index      BIGINT PRIMARY KEY,
    leaf_hash       TEXT NOT NULL UNIQUE,
    agent           TEXT NOT NULL,
    sequence        BIGINT NOT NULL,
    timestamp_ms    BIGINT NOT NULL,
    model           TEXT NOT NULL,
    encoded         TEXT NOT NULL,
    batch_root      TEXT NOT NULL REFERENCES record_batches(batch_root),
    batch_index     BIGINT NOT NULL,
    UNIQUE (agent, sequence)
);
CREATE INDEX records_by_agent_time ON records (agent, timestamp_ms);

-- Per agent: where its chain of records ends.
CREATE TABLE agents (
    address         TEXT PRIMARY KEY,
    next_sequence   BIGINT NOT NULL,
    last_leaf_hash  TEXT NOT NULL,
    record_count    BIGINT NOT NULL,
    first_seen_ms   BIGINT NOT NULL,
    last_seen_ms    BIGINT NOT NULL
);

-- Signed checkpoints (C2SP notes), one per size the operator signed.
CREATE TABLE checkpoints (
    size        BIGINT PRIMARY KEY,
    root        TEXT NOT NULL,
    note        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Checkpoints anchored in AuditLog, as the anchoring worker saw its transactions mined.
CREATE TABLE anchors (
    size            BIGINT PRIMARY KEY,
    root            TEXT NOT NULL,
    tx_hash         TEXT NOT NULL,
    block_number    BIGINT NOT NULL,
    anchored_at     BIGINT NOT NULL
);

-- Co-sign decisions enter the log as records of the policy service: the salts of their
-- commitments stay here so the operator can disclose a decision like an agent discloses a call.
ALTER TABLE decisions ADD COLUMN logged_leaf TEXT;
ALTER TABLE decisions ADD COLUMN record_salts TEXT;
CREATE INDEX decisions_unlogged ON decisions (logged_leaf, created_at);

-- The indexer: chain events at or below the confirmation depth, the hash of every block it
-- indexed (to notice reorganisations), and where it stands.
CREATE TABLE chain_blocks (
    number  BIGINT PRIMARY KEY,
    hash    TEXT NOT NULL
);
CREATE TABLE chain_events (
    block_number    BIGINT NOT NULL,
    log_index       BIGINT NOT NULL,
    block_hash      TEXT NOT NULL,
    tx_hash         TEXT NOT NULL,
    contract        TEXT NOT NULL,
    event           TEXT NOT NULL,
    fields          TEXT NOT NULL,
    PRIMARY KEY (block_number, log_index)
);
