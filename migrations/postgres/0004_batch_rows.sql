-- A batch is one row: its records' leaf hashes and canonical encodings become two values of
-- `record_batches` (keep in step with ../sqlite). One row per record, with its indexes, was
-- more than PostgreSQL alone could insert at 100,000 records/s on this project's benchmark
-- machine (scripts/pg_records_ceiling.sql). Per record there is now only `leaf_keys`: the
-- first 8 bytes of its leaf hash and its log index, to find it by hash.
--
--   leaf_hashes: 32 bytes per record, in log order;
--   encodings:   per record, its encoding's length (4 bytes, big-endian) and the encoding.
-- Both are stored uncompressed (STORAGE EXTERNAL): hashes do not compress, and compressing a
-- megabyte per batch cost more CPU than it saved.
ALTER TABLE record_batches
    ADD COLUMN first_sequence BIGINT,
    ADD COLUMN min_timestamp_ms BIGINT,
    ADD COLUMN max_timestamp_ms BIGINT,
    ADD COLUMN leaf_hashes BYTEA,
    ADD COLUMN encodings BYTEA;
ALTER TABLE record_batches
    ALTER COLUMN leaf_hashes SET STORAGE EXTERNAL,
    ALTER COLUMN encodings SET STORAGE EXTERNAL;

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
           string_agg(decode(substr(leaf_hash, 3), 'hex'), ''::bytea ORDER BY batch_index)
               AS leaf_hashes,
           string_agg(int4send(((length(encoded) - 2) / 2)::int4)
                      || decode(substr(encoded, 3), 'hex'), ''::bytea ORDER BY batch_index)
               AS encodings
    FROM records GROUP BY batch_root
) AS r
WHERE record_batches.batch_root = r.batch_root;

ALTER TABLE record_batches
    ALTER COLUMN first_sequence SET NOT NULL,
    ALTER COLUMN min_timestamp_ms SET NOT NULL,
    ALTER COLUMN max_timestamp_ms SET NOT NULL,
    ALTER COLUMN leaf_hashes SET NOT NULL,
    ALTER COLUMN encodings SET NOT NULL;
CREATE UNIQUE INDEX record_batches_by_index ON record_batches (first_index);
CREATE INDEX record_batches_by_agent ON record_batches (agent, first_index);

-- The prefix is a signed big-endian integer: integer keys compare several times faster than
-- byte strings, which showed in the profile of ingestion.
CREATE TABLE leaf_keys (
    prefix      BIGINT NOT NULL,
    leaf_index  BIGINT NOT NULL
);
INSERT INTO leaf_keys (prefix, leaf_index)
SELECT ('x' || substr(leaf_hash, 3, 16))::bit(64)::bigint, leaf_index FROM records;
CREATE INDEX leaf_keys_by_prefix ON leaf_keys (prefix);

DROP TABLE records;
