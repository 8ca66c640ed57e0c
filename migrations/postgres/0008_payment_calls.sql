-- The model call an x402 payment was made in: the leaf hash of the agent's audit record of the
-- call, which commits to the payment. Set once, by the agent's signature (POST
-- /v1/decisions/{request_id}/call).
ALTER TABLE decisions ADD COLUMN call_leaf_hash TEXT;
