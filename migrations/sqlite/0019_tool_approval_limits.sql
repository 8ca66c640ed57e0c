-- Held tool calls (red-team review of issue 30; sqlite dialect, keep in step with the other folder):
-- the hash of the arguments a call was held with (an approval approves only these) and when a
-- pending approval expires (the gateway stops waiting then; an expired one is never resolved).
ALTER TABLE tool_decisions ADD COLUMN arguments_hash TEXT;
ALTER TABLE tool_decisions ADD COLUMN approval_expires_at BIGINT;
-- Approvals pending before this migration expire after the gateway's default wait (300 s).
UPDATE tool_decisions SET approval_expires_at = received_at + 300
    WHERE approval_status IS NOT NULL AND approval_expires_at IS NULL;
-- Counting an agent's pending approvals (the per-agent cap) reads this index.
CREATE INDEX tool_decisions_pending_by_agent ON tool_decisions (agent, approval_status, approval_expires_at);
