-- How fast PostgreSQL alone can insert audit-log records, with no client, network or other load:
--   psql postgres://postgres@127.0.0.1:5432/test -f scripts/pg_records_ceiling.sql
-- 200,000 rows, in one transaction each, into a copy of `records` with its indexes as of
-- migration 0003 (hex text), then into the same shape with binary columns; both tables are
-- dropped at the end. (Ordinary tables: temporary ones skip the write-ahead log.) The server's
-- ingestion cannot beat the first figure: it is the ceiling of one row per record here.
DROP TABLE IF EXISTS ceiling_records_text, ceiling_records_binary;
\timing on
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

-- Leaf hashes are random (md5 pairs stand in for SHA-256); one agent; 170-byte encodings.
INSERT INTO ceiling_records_text
SELECT i, '0x' || md5(i::text) || md5((i + 1)::text), '0x' || repeat('ab', 20), i,
       1700000000000 + i, 'bench-model', '0x' || repeat('cd', 170),
       '0x' || md5((i / 5000)::text) || md5('root'), i % 5000
FROM generate_series(0, 199999) AS i;

INSERT INTO ceiling_records_binary
SELECT i, decode(md5(i::text) || md5((i + 1)::text), 'hex'), decode(repeat('ab', 20), 'hex'), i,
       1700000000000 + i, 'bench-model', decode(repeat('cd', 170), 'hex'), (i / 5000) * 5000
FROM generate_series(0, 199999) AS i;

\timing off
DROP TABLE ceiling_records_text, ceiling_records_binary;
