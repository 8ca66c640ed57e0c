-- Ingestion wrote three rows per record; now it writes about one (keep in step with ../sqlite).

-- A record no longer REFERENCES its batch: the per-row foreign-key check took about 40% of a
-- batch's insert time, and `append_batch` writes the batch and its records in one transaction.
ALTER TABLE records DROP CONSTRAINT records_batch_root_fkey;

-- Records are found by the first 8 bytes of their leaf hash (`0x` and 16 hex digits), no longer
-- by a unique index on the whole hash: leaf hashes are random, so every insert dirtied an index
-- page of its own, and a 66-character key made that index large. Queries compare the full
-- hash in the row. Leaf hashes stay unique: each covers its record's agent and sequence, which
-- are unique together.
ALTER TABLE records DROP CONSTRAINT records_leaf_hash_key;
CREATE INDEX records_by_leaf_prefix ON records (substr(leaf_hash, 1, 18));

-- The tree keeps only subtrees of 64 leaves or more (level 6 and up, node_key >= 6 * 2^56):
-- proofs hash the smaller ones from the records' leaf hashes. Two node rows per record became
-- one per 32.
DELETE FROM log_nodes WHERE node_key < 432345564227567616;
