-- People and their actions on the record (postgres dialect; keep in step with the other folder).

-- One vote per approver name per request: a quorum counts distinct names, and a name that
-- votes again changes nothing (its first vote stands). One denial denies.
CREATE TABLE approval_votes (
    request_id  TEXT NOT NULL REFERENCES approvals(request_id),
    approver    TEXT NOT NULL,
    role        TEXT NOT NULL,
    approve     BIGINT NOT NULL CHECK (approve IN (0, 1)),
    comment     TEXT,
    voted_at    BIGINT NOT NULL,
    PRIMARY KEY (request_id, approver)
);

-- How many distinct approvers the policy asked for (a quorum), fixed when the request waited.
ALTER TABLE approvals ADD COLUMN required BIGINT NOT NULL DEFAULT 1;

-- Who issued a token (an admin's token name, or the configuration at start-up).
ALTER TABLE api_tokens ADD COLUMN created_by TEXT;

-- Who installed each policy version, and the document as submitted (TOML with its comments,
-- or JSON as sent): `document` stays the normalised JSON that is hashed.
ALTER TABLE policies ADD COLUMN installed_by TEXT;
ALTER TABLE policies ADD COLUMN source TEXT;
ALTER TABLE policies ADD COLUMN source_format TEXT;

-- Administrative actions (verdicts, policy, token and agent changes): each becomes a record of
-- the policy service in the log (model chaperone-policy/admin-action/v1), like decisions, so an
-- auditor can prove who changed what, and when. `detail` is the JSON the record commits to.
CREATE TABLE admin_actions (
    id            BIGSERIAL PRIMARY KEY,
    at            BIGINT NOT NULL,
    actor         TEXT NOT NULL,
    actor_role    TEXT NOT NULL,
    action        TEXT NOT NULL,
    subject       TEXT NOT NULL,
    detail        TEXT NOT NULL,
    logged_leaf   TEXT,
    record_salts  TEXT
);
CREATE INDEX admin_actions_unlogged ON admin_actions (logged_leaf, id);
CREATE INDEX admin_actions_by_time ON admin_actions (at, id);
