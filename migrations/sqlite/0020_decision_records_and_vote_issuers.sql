-- Every record of a decision, opened (third red-team review of issue 29; sqlite dialect, keep in
-- step with the other folder). A request re-decided after a human approval is logged again:
-- its earlier record ("pending") stays in the log, so its opening is kept beside the new one.
-- Written when the record is logged, with exactly the content it commits to (the decisions
-- row may change after). Decisions logged before this migration are opened from their row
-- (their current record); an earlier record of a request re-decided before it cannot be.
CREATE TABLE decision_records (
    leaf_hash    TEXT PRIMARY KEY,
    request_id   TEXT NOT NULL,
    request      TEXT NOT NULL,
    decision     TEXT NOT NULL,
    record_salts TEXT NOT NULL
);
CREATE INDEX decision_records_by_request ON decision_records (request_id);

-- Who issued the token each vote was cast with, noted when it is cast (none: a token of the
-- service's configuration). It was looked up when read, with whole-second times: a token
-- revoked in the second it voted was found by no lookup and read as the configuration's.
-- Existing votes are filled as that lookup found them (the best known now).
ALTER TABLE approval_votes ADD COLUMN issued_by TEXT;
UPDATE approval_votes SET issued_by = (
    SELECT t.created_by FROM api_tokens t WHERE t.name = approval_votes.approver
    AND t.created_at <= approval_votes.voted_at
    AND (t.revoked_at IS NULL OR t.revoked_at >= approval_votes.voted_at)
    ORDER BY t.serial DESC LIMIT 1);

-- A decision's revision, raised when it is re-decided: the anchorer marks it logged only if it
-- is still the revision it read (else the record it wrote is of the verdict before, and the
-- new one is logged next).
ALTER TABLE decisions ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
