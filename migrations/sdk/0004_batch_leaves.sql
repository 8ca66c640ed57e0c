-- Records are found by their leaf hash through their batch's leaf hashes, no longer through an
-- index. Leaf hashes are random: each batch's inserts into that index dirtied most of its
-- pages, so the write-ahead log grew with the index (7 MB per batch of 5,000 at 440,000
-- records) and capped the SDK at ~60,000 records/s. A batch's leaf hashes are now one value,
-- 32 bytes per record in sequence order; finding a hash scans them (32 MB per million
-- records), which only `disclose` and `forget` do. Rows keep their leaf hash, checked on read.
DROP INDEX openings_leaf_prefix;
CREATE TABLE batch_leaves (
    batch_id       INTEGER PRIMARY KEY REFERENCES outbox (batch_id),
    agent          TEXT NOT NULL,
    first_sequence INTEGER NOT NULL,
    leaf_hashes    BLOB NOT NULL
);
INSERT INTO batch_leaves (batch_id, agent, first_sequence, leaf_hashes)
SELECT batch_id, agent, MIN(sequence), unhex(group_concat(hex(leaf_hash), '' ORDER BY sequence))
FROM openings GROUP BY batch_id, agent;
