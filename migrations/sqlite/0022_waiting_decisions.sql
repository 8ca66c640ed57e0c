-- The decisions still waiting for a human (fifth red-team review of issue 29; sqlite dialect,
-- keep in step with the other folder). A denial or an expired approval now ends its request
-- with a final decision, and the expiry task looks for waiting requests whose approval ended
-- on every anchoring tick: this index holds only those, however many decisions the log has.
CREATE INDEX decisions_waiting ON decisions (request_id) WHERE outcome = 'pending_approval';
