-- Tool-policy decisions of the MCP gateway (sqlite dialect; keep in step with the other folder).
-- Each row is signed by its agent's record key (checked before insert); the listing is
-- GET /v1/tool-decisions.
CREATE TABLE tool_decisions (
    id TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    upstream TEXT NOT NULL,
    tool TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reasons TEXT NOT NULL,
    policy_version BIGINT NOT NULL,
    policy_hash TEXT NOT NULL,
    leaf_hash TEXT,
    decided_at_ms BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    body TEXT NOT NULL,
    -- For `approval_required`: pending, approved or denied, by whom and when (a human's
    -- verdict through the admin API; the agent's key cannot give one).
    approval_status TEXT,
    approval_by TEXT,
    approval_at BIGINT
);
CREATE INDEX tool_decisions_pending ON tool_decisions (approval_status, received_at);
CREATE INDEX tool_decisions_by_received ON tool_decisions (received_at, id);
CREATE INDEX tool_decisions_by_tool ON tool_decisions (tool, received_at, id);
