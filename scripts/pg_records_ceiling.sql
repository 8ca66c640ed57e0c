-- How fast PostgreSQL alone can store audit-log records, with no client, network or other load:
--   psql postgres://postgres@127.0.0.1:5432/test -f scripts/pg_records_ceiling.sql
-- 200,000 records (one agent, random leaf hashes, 170-byte encodings), generated first into
-- temporary tables (untimed), then inserted in one timed statement per shape:
--   1. one row per record with its four indexes, hex text (server migrations 0002-0003);
--   2. the same with binary columns;
--   3. one row per batch of 5,000 plus a narrow leaf key per record (migration 0004, the
--      server's shape now): the batch rows, then the keys.
-- All tables are dropped at the end. (Ordinary tables: temporary ones skip the write-ahead
-- log.) The server cannot beat these figures; end to end, the agent and the server share the
-- cores with the database as well.
DROP TABLE IF EXISTS ceiling_records_text, ceiling_records_binary, ceiling_batches,
    ceiling_leaf_keys;

CREATE TEMPORARY TABLE source AS
SELECT i AS leaf_index,
       decode(md5(i::text) || md5((i + 1)::text), 'hex') AS leaf_hash,
       decode(repeat('cd', 170), 'hex') AS encoded
FROM generate_series(0, 199999) AS i;
CREATE TEMPORARY TABLE source_batches AS
SELECT leaf_index / 5000 AS batch,
       string_agg(leaf_hash, ''::bytea ORDER BY leaf_index) AS leaf_hashes,
       string_agg(int4send(170) || encoded, ''::bytea ORDER BY leaf_index) AS encodings
FROM source GROUP BY 1;

CREATE TABLE ceiling_records_text (
    leaf_index BIGINT PRIMARY KEY, leaf_hash TEXT NOT NULL, agent TEXT NOT NULL,
    sequence BIGINT NOT NULL, timestamp_ms BIGINT NOT NULL, model TEXT NOT NULL,
    encoded TEXT NOT NULL, batch_root TEXT NOT NULL, batch_index BIGINT NOT NULL,
    UNIQUE (agent, sequence)
);
CREATE INDEX ON ceiling_records_text (agent, timestamp_ms);
CREATE INDEX ON ceiling_records_text (substr(leaf_hash, 1, 18));
CREATE TABLE ceiling_records_binary (
    leaf_index BIGINT PRIMARY KEY, leaf_hash BYTEA NOT NULL, agent BYTEA NOT NULL,
    sequence BIGINT NOT NULL, timestamp_ms BIGINT NOT NULL, model TEXT NOT NULL,
    encoded BYTEA NOT NULL, batch_first BIGINT NOT NULL, UNIQUE (agent, sequence)
);
CREATE INDEX ON ceiling_records_binary (agent, timestamp_ms);
CREATE INDEX ON ceiling_records_binary (substr(leaf_hash, 1, 8));
CREATE TABLE ceiling_batches (
    batch_root TEXT PRIMARY KEY, agent TEXT NOT NULL, first_index BIGINT NOT NULL,
    size BIGINT NOT NULL, signature TEXT NOT NULL, received_at BIGINT NOT NULL,
    first_sequence BIGINT NOT NULL, min_timestamp_ms BIGINT NOT NULL,
    max_timestamp_ms BIGINT NOT NULL, leaf_hashes BYTEA NOT NULL, encodings BYTEA NOT NULL
);
ALTER TABLE ceiling_batches
    ALTER COLUMN leaf_hashes SET STORAGE EXTERNAL,
    ALTER COLUMN encodings SET STORAGE EXTERNAL;
CREATE UNIQUE INDEX ON ceiling_batches (first_index);
CREATE INDEX ON ceiling_batches (agent, first_index);
CREATE TABLE ceiling_leaf_keys (prefix BIGINT NOT NULL, leaf_index BIGINT NOT NULL);
CREATE INDEX ON ceiling_leaf_keys (prefix);

\timing on
-- 1. One row per record, hex text.
INSERT INTO ceiling_records_text
SELECT leaf_index, '0x' || encode(leaf_hash, 'hex'), '0x' || repeat('ab', 20), leaf_index,
       1700000000000 + leaf_index, 'bench-model', '0x' || encode(encoded, 'hex'),
       '0x' || md5((leaf_index / 5000)::text) || md5('root'), leaf_index % 5000
FROM source;
-- 2. One row per record, binary.
INSERT INTO ceiling_records_binary
SELECT leaf_index, leaf_hash, decode(repeat('ab', 20), 'hex'), leaf_index,
       1700000000000 + leaf_index, 'bench-model', encoded, (leaf_index / 5000) * 5000
FROM source;
-- 3. One row per batch, then one leaf key per record.
INSERT INTO ceiling_batches
SELECT '0x' || md5(batch::text) || md5('root'), '0x' || repeat('ab', 20), batch * 5000, 5000,
       '0x' || repeat('ef', 65), 0, batch * 5000, 0, 0, leaf_hashes, encodings
FROM source_batches;
INSERT INTO ceiling_leaf_keys
SELECT ('x' || encode(substr(leaf_hash, 1, 8), 'hex'))::bit(64)::bigint, leaf_index FROM source;
\timing off

DROP TABLE ceiling_records_text, ceiling_records_binary, ceiling_batches, ceiling_leaf_keys;
