-- Ingestion wrote three rows per record; now it writes about one (keep in step with ../postgres).

-- A record no longer REFERENCES its batch: the per-row foreign-key check took about 40% of a
-- batch's insert time, and `append_batch` writes the batch and its records in one transaction.
--
-- Records are found by the first 8 bytes of their leaf hash (`0x` and 16 hex digits), no longer
-- by a unique index on the whole hash: leaf hashes are random, so every insert dirtied an index
-- page of its own, and a 66-character key made that index large. Queries compare the full
-- hash in the row. Leaf hashes stay unique: each covers its record's agent and sequence, which
-- are unique together.
-- (SQLite drops a constraint by rebuilding the table.)
CREATE TABLE records_rebuilt (
    leaf_index      BIGINT PRIMARY KEY,
    leaf_hash       TEXT NOT NULL,
    agent           TEXT NOT NULL,
    sequence        BIGINT NOT NULL,
    timestamp_ms    BIGINT NOT NULL,
    model           TEXT NOT NULL,
    encoded         TEXT NOT NULL,
    batch_root      TEXT NOT NULL,
    batch_index     BIGINT NOT NULL,
    UNIQUE (agent, sequence)
);
INSERT INTO records_rebuilt SELECT leaf_index, leaf_hash, agent, sequence, timestamp_ms, model,
    encoded, batch_root, batch_index FROM records;
DROP TABLE records;
ALTER TABLE records_rebuilt RENAME TO records;
CREATE INDEX records_by_agent_time ON records (agent, timestamp_ms);
CREATE INDEX records_by_leaf_prefix ON records (substr(leaf_hash, 1, 18));

-- The tree keeps only subtrees of 64 leaves or more (level 6 and up, node_key >= 6 * 2^56):
-- proofs hash the smaller ones from the records' leaf hashes. Two node rows per record became
-- one per 32.
DELETE FROM log_nodes WHERE node_key < 432345564227567616;
