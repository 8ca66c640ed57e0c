-- Who may vote, and records selected by when the server received them (postgres dialect; keep
-- in step with the other folder).

-- The order tokens were issued in. A vote counts only from a token issued before its request
-- started waiting (approvals.voters_through below): an admin who mints a second approver token
-- once a request is pending cannot reach its quorum alone. Existing tokens are numbered in the
-- order they were created; new ones take the sequence's next number.
CREATE SEQUENCE api_tokens_serial_seq;
ALTER TABLE api_tokens ADD COLUMN serial BIGINT;
UPDATE api_tokens SET serial = numbered.n
FROM (SELECT token_hash, row_number() OVER (ORDER BY created_at, token_hash) AS n
      FROM api_tokens) AS numbered
WHERE api_tokens.token_hash = numbered.token_hash;
SELECT setval('api_tokens_serial_seq', COALESCE((SELECT MAX(serial) FROM api_tokens), 0) + 1, false);
ALTER TABLE api_tokens ALTER COLUMN serial SET DEFAULT nextval('api_tokens_serial_seq');
ALTER TABLE api_tokens ALTER COLUMN serial SET NOT NULL;
ALTER SEQUENCE api_tokens_serial_seq OWNED BY api_tokens.serial;

-- The newest token (by serial) that may vote on a pending request: those live when it started
-- waiting. For approvals made before this migration, the tokens created in an earlier second.
ALTER TABLE approvals ADD COLUMN voters_through BIGINT NOT NULL DEFAULT 0;
UPDATE approvals SET voters_through = (
    SELECT COALESCE(MAX(t.serial), 0) FROM api_tokens t
    WHERE t.created_at < (SELECT d.created_at FROM decisions d
                          WHERE d.request_id = approvals.request_id));

-- One live token per name, whatever its case: a quorum's distinct names are distinct people,
-- and a revocation by name stops exactly one holder. Where several live tokens shared a name
-- (a configuration's admin token changed between restarts), the newest stays live and the
-- others are revoked, on the record.
INSERT INTO admin_actions (at, actor, actor_role, action, subject, detail)
SELECT CAST(EXTRACT(EPOCH FROM now()) AS BIGINT), 'migration 0017', 'configuration',
       'token.revoke', t.name, '{"reason":"a newer live token has the same name"}'
FROM api_tokens t
WHERE t.revoked_at IS NULL AND EXISTS (
    SELECT 1 FROM api_tokens n
    WHERE n.revoked_at IS NULL AND lower(n.name) = lower(t.name) AND n.serial > t.serial);
UPDATE api_tokens SET revoked_at = CAST(EXTRACT(EPOCH FROM now()) AS BIGINT)
WHERE revoked_at IS NULL AND EXISTS (
    SELECT 1 FROM api_tokens n
    WHERE n.revoked_at IS NULL AND lower(n.name) = lower(api_tokens.name)
      AND n.serial > api_tokens.serial);
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (lower(name)) WHERE revoked_at IS NULL;

-- The evidence pack selects records by when the server received their batch (the agent's own
-- timestamp is the agent's claim), for all agents or one.
CREATE INDEX record_batches_by_received ON record_batches (received_at, first_index);
CREATE INDEX record_batches_by_agent_received ON record_batches (agent, received_at, first_index);
