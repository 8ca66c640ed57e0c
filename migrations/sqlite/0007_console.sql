-- The approver's comment on a verdict (the console asks for one; the API takes one).
ALTER TABLE approvals ADD COLUMN comment TEXT;
