-- Records are found by their leaf hash through their batch's leaf hashes, no longer through an
-- index. Leaf hashes are random, so each batch's inserts into that index dirtied most of its
-- pages: the write-ahead log grew with the index, and the SDK recorded at ~60,000 records/s
-- beside a server (~100,000 without the index). A batch's leaf hashes are now one value, 32
-- bytes per record in sequence order; finding a hash scans them (32 MB and ~35 ms per million
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
