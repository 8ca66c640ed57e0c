-- A batch's openings are one row: its records' leaf hashes, salts and content lengths become
-- values of `batch_openings`, and `openings` gets no more rows. Per record, SQLite wrote a
-- 12-column row and two index entries; the index on random leaf hashes dirtied most of its
-- pages per batch, so the write-ahead log grew with the file, and the SDK recorded at ~60,000
-- records/s beside a server. Now it writes one row per batch.
--
--   leaf_hashes: 32 bytes per record, in sequence order. Finding a hash scans them (32 MB and
--                ~35 ms per million records), which only `disclose` and `forget` do.
--   openings:    108 bytes per record: the input, output and metadata salts (all zero once
--                forgotten) and the three content lengths (4 bytes each, big-endian; the
--                metadata's 0xffffffff when the record has none). NULL for batches recorded
--                before this migration, whose openings stay in their `openings` rows.
--   models:      the records' model ids, a JSON array.
--   content_offset: where the batch's content starts in the content file; each record's
--                follows the one before it.
DROP INDEX openings_leaf_prefix;
CREATE TABLE batch_openings (
    batch_id       INTEGER PRIMARY KEY REFERENCES outbox (batch_id),
    agent          TEXT NOT NULL,
    first_sequence INTEGER NOT NULL,
    leaf_hashes    BLOB NOT NULL,
    openings       BLOB,
    models         TEXT,
    content_offset INTEGER
);
INSERT INTO batch_openings (batch_id, agent, first_sequence, leaf_hashes)
SELECT batch_id, agent, MIN(sequence), unhex(group_concat(hex(leaf_hash), '' ORDER BY sequence))
FROM openings GROUP BY batch_id, agent;
CREATE INDEX batch_openings_by_sequence ON batch_openings (agent, first_sequence);
CREATE INDEX outbox_by_sequence ON outbox (agent, first_sequence);
