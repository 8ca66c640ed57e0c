-- The arguments of a held tool call (second red-team review of issue 30; sqlite dialect, keep in
-- step with the other folder): what the approver is shown (the gateway's view, checked against
-- arguments_hash before insert). Raw content: kept only while the approval is pending, set to
-- NULL once it is decided or has expired (arguments_hash stays); never listed.
ALTER TABLE tool_decisions ADD COLUMN held_arguments TEXT;
-- Clearing expired arguments reads this index (only rows still holding arguments are in it).
CREATE INDEX tool_decisions_held_arguments ON tool_decisions (approval_expires_at)
    WHERE held_arguments IS NOT NULL;
