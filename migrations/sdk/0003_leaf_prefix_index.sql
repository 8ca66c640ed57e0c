-- Records are found by the first 8 bytes of their leaf hash, no longer by a key on the whole
-- hash. Leaf hashes are random, so every insert into their index dirtied a page of its own,
-- each a 4 KiB frame in the write-ahead log: that index was most of what the SDK wrote per
-- record. Keyed by 8 bytes it is about 2.5 times smaller; queries compare the full hash in the
-- row. (SQLite drops a PRIMARY KEY by rebuilding the table.)
CREATE TABLE openings_rebuilt (
    leaf_hash      BLOB NOT NULL,
    agent          TEXT NOT NULL,
    sequence       INTEGER NOT NULL,
    batch_id       INTEGER NOT NULL REFERENCES outbox (batch_id),
    model          TEXT NOT NULL,
    input_salt     BLOB,
    input          BLOB,
    output_salt    BLOB,
    output         BLOB,
    metadata_salt  BLOB,
    metadata       BLOB,
    content_offset INTEGER,
    input_len      INTEGER,
    output_len     INTEGER,
    metadata_len   INTEGER
);
INSERT INTO openings_rebuilt SELECT leaf_hash, agent, sequence, batch_id, model, input_salt,
    input, output_salt, output, metadata_salt, metadata, content_offset, input_len, output_len,
    metadata_len FROM openings;
DROP TABLE openings;
ALTER TABLE openings_rebuilt RENAME TO openings;
CREATE INDEX openings_sequence ON openings (agent, sequence);
CREATE INDEX openings_leaf_prefix ON openings (substr(leaf_hash, 1, 8));
