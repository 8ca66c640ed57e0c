-- The security review's fixes to reservations (keep in step with ../sqlite).
--
-- A reservation counts in every window its co-signature can reach, not only in the window of
-- its creation: the history is read by expiry.
CREATE INDEX reservations_by_expiry ON spend_reservations (wallet, expires_at);

-- An EIP-3009 authorization is settled when its token emits AuthorizationUsed(wallet, nonce):
-- the decision names "<token>:<nonce>".
ALTER TABLE decisions ADD COLUMN authorization_key TEXT;
CREATE INDEX decisions_by_authorization ON decisions (wallet, authorization_key);
