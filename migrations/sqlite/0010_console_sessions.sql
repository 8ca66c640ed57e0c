-- Console sessions: a random id per login, in the cookie; only its SHA-256 is stored. A
-- session expires, logout deletes it, and revoking its token ends it. (Before this the cookie
-- held the bearer token itself, which logout could not take back.)
CREATE TABLE console_sessions (
    id_hash     TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL REFERENCES api_tokens(token_hash),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX console_sessions_by_token ON console_sessions (token_hash);

-- Tokens are revoked, not deleted: what a token's holder did stays attributable to its name.
ALTER TABLE api_tokens ADD COLUMN revoked_at BIGINT;
