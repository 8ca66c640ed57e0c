-- A batch is one row: its records' leaf hashes and canonical encodings become two values of
-- `record_batches` (keep in step with ../postgres, which says why). Per record there is only
-- `leaf_keys`: the first 8 bytes of its leaf hash (as a big-endian signed integer) and its log
-- index, to find it by hash.
--
--   leaf_hashes: 32 bytes per record, in log order;
--   encodings:   per record, its encoding's length (4 bytes, big-endian) and the encoding.
-- (SQLite adds a NOT NULL column only with a default; the empty blob is never a batch's.)
ALTER TABLE record_batches ADD COLUMN first_sequence BIGINT NOT NULL DEFAULT 0;
ALTER TABLE record_batches ADD COLUMN min_timestamp_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE record_batches ADD COLUMN max_timestamp_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE record_batches ADD COLUMN leaf_hashes BLOB NOT NULL DEFAULT x'';
ALTER TABLE record_batches ADD COLUMN encodings BLOB NOT NULL DEFAULT x'';

UPDATE record_batches SET
    first_sequence = r.first_sequence,
    min_timestamp_ms = r.min_timestamp_ms,
    max_timestamp_ms = r.max_timestamp_ms,
    leaf_hashes = r.leaf_hashes,
    encodings = r.encodings
FROM (
    SELECT batch_root,
           MIN(sequence) AS first_sequence,
           MIN(timestamp_ms) AS min_timestamp_ms,
           MAX(timestamp_ms) AS max_timestamp_ms,
           unhex(group_concat(substr(leaf_hash, 3), '' ORDER BY batch_index)) AS leaf_hashes,
           unhex(group_concat(printf('%08x', (length(encoded) - 2) / 2) || substr(encoded, 3),
                              '' ORDER BY batch_index)) AS encodings
    FROM records GROUP BY batch_root
) AS r
WHERE record_batches.batch_root = r.batch_root;

CREATE UNIQUE INDEX record_batches_by_index ON record_batches (first_index);
CREATE INDEX record_batches_by_agent ON record_batches (agent, first_index);

CREATE TABLE leaf_keys (
    prefix      BIGINT NOT NULL,
    leaf_index  BIGINT NOT NULL,
    PRIMARY KEY (prefix, leaf_index)
) WITHOUT ROWID;
-- The prefix as a signed big-endian integer, one hex digit at a time (SQLite has no hex-to-
-- integer function; `<<` wraps like a 64-bit register).
INSERT INTO leaf_keys (prefix, leaf_index)
SELECT ((instr('0123456789abcdef', substr(leaf_hash, 3, 1)) - 1) << 60) |
       ((instr('0123456789abcdef', substr(leaf_hash, 4, 1)) - 1) << 56) |
       ((instr('0123456789abcdef', substr(leaf_hash, 5, 1)) - 1) << 52) |
       ((instr('0123456789abcdef', substr(leaf_hash, 6, 1)) - 1) << 48) |
       ((instr('0123456789abcdef', substr(leaf_hash, 7, 1)) - 1) << 44) |
       ((instr('0123456789abcdef', substr(leaf_hash, 8, 1)) - 1) << 40) |
       ((instr('0123456789abcdef', substr(leaf_hash, 9, 1)) - 1) << 36) |
       ((instr('0123456789abcdef', substr(leaf_hash, 10, 1)) - 1) << 32) |
       ((instr('0123456789abcdef', substr(leaf_hash, 11, 1)) - 1) << 28) |
       ((instr('0123456789abcdef', substr(leaf_hash, 12, 1)) - 1) << 24) |
       ((instr('0123456789abcdef', substr(leaf_hash, 13, 1)) - 1) << 20) |
       ((instr('0123456789abcdef', substr(leaf_hash, 14, 1)) - 1) << 16) |
       ((instr('0123456789abcdef', substr(leaf_hash, 15, 1)) - 1) << 12) |
       ((instr('0123456789abcdef', substr(leaf_hash, 16, 1)) - 1) << 8) |
       ((instr('0123456789abcdef', substr(leaf_hash, 17, 1)) - 1) << 4) |
       ((instr('0123456789abcdef', substr(leaf_hash, 18, 1)) - 1) << 0),
       leaf_index
FROM records;

DROP TABLE records;
