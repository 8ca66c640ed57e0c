-- Running totals per spend window, so that a decision's cost does not grow with the wallet's
-- history (keep in step with ../postgres).
--
-- For (wallet, token, window): the sum of the amounts of the reservations that are not
-- released and expire after `since` (a decimal string, as amounts are). A decision moves
-- `since` to its window's start by reading only what expired in between; every status change
-- of a reservation adjusts the totals in the same transaction, under the wallet's lock.
CREATE TABLE spend_window_totals (
    wallet          TEXT NOT NULL REFERENCES wallets(address),
    token           TEXT NOT NULL,
    window_seconds  BIGINT NOT NULL,
    since           BIGINT NOT NULL,
    total           TEXT NOT NULL,
    PRIMARY KEY (wallet, token, window_seconds)
);

-- What the totals read: a wallet's reservations of one token by expiry.
DROP INDEX reservations_by_expiry;
CREATE INDEX reservations_by_token_expiry ON spend_reservations (wallet, token, expires_at);

-- What the indexer releases on every pass: only the reservations still reserved, by expiry
-- (without it each pass read every reservation ever made).
CREATE INDEX reservations_reserved_by_expiry ON spend_reservations (expires_at)
    WHERE status = 'reserved';
