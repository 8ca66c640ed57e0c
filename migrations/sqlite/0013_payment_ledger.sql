-- The payment ledger: how each reservation ended, as the indexer saw it on chain.
-- settled_tx / settled_block / settled_at: the transaction that used the co-signature, its
-- block and that block's time (for a Permit2 payment, which emits no event of its own, the
-- confirmed block whose nonce bitmap first showed it used, and no transaction).
-- expired_at: the time of the confirmed block past validUntil whose indexing released the
-- reservation unused (NULL for a release for another cause, and cleared by a later settlement).
ALTER TABLE spend_reservations ADD COLUMN settled_tx TEXT;
ALTER TABLE spend_reservations ADD COLUMN settled_block BIGINT;
ALTER TABLE spend_reservations ADD COLUMN settled_at BIGINT;
ALTER TABLE spend_reservations ADD COLUMN expired_at BIGINT;
-- The time of the block each indexed event was mined in.
ALTER TABLE chain_events ADD COLUMN block_time BIGINT;
-- The ledger lists payments newest first across every wallet.
CREATE INDEX reservations_by_time ON spend_reservations (created_at, id);
