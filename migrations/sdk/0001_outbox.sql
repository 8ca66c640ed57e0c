-- The SDK's local file (SQLite, one per agent app): the agent's record chain, the durable
-- outbox of signed batches, and the disclosure store of salts and content.

-- Where the agent's chain of records stands: the next sequence number and the last leaf hash.
CREATE TABLE agent_chain (
    agent         TEXT PRIMARY KEY,
    next_sequence INTEGER NOT NULL,
    previous      BLOB NOT NULL
);

-- Signed batches, in the order they must be delivered. `body` is the JSON the server takes;
-- a batch is resent byte for byte until the server answers with a receipt (it treats a resend
-- as a replay), so each record is logged exactly once.
CREATE TABLE outbox (
    batch_id       INTEGER PRIMARY KEY AUTOINCREMENT,
    agent          TEXT NOT NULL,
    first_sequence INTEGER NOT NULL,
    size           INTEGER NOT NULL,
    body           BLOB NOT NULL,
    created_ms     INTEGER NOT NULL,
    delivered_ms   INTEGER,
    first_index    INTEGER,
    receipt        TEXT,
    rejected       TEXT
);
CREATE INDEX outbox_undelivered ON outbox (batch_id) WHERE delivered_ms IS NULL;

-- The openings of every record's commitments. Deleting a row's salts crypto-shreds the
-- record: its commitments can no longer be opened, while the log stays intact.
CREATE TABLE openings (
    leaf_hash     BLOB PRIMARY KEY,
    agent         TEXT NOT NULL,
    sequence      INTEGER NOT NULL,
    batch_id      INTEGER NOT NULL REFERENCES outbox (batch_id),
    model         TEXT NOT NULL,
    input_salt    BLOB,
    input         BLOB,
    output_salt   BLOB,
    output        BLOB,
    metadata_salt BLOB,
    metadata      BLOB
);
CREATE INDEX openings_sequence ON openings (agent, sequence);
