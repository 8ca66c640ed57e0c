-- The agents that may append to the log (POST /v1/records). Before this, any key could, so
-- anyone could put misleading records into a deployment's genuine log. An agent is registered
-- by an admin (API, CLI, console) or with a wallet whose agent it is.
CREATE TABLE registered_agents (
    address         TEXT PRIMARY KEY,
    registered_at   BIGINT NOT NULL,
    registered_by   TEXT NOT NULL
);

-- Existing deployments keep working: the agents of registered wallets, and the agents that
-- had already appended (marked so, for an admin to review and unregister).
INSERT INTO registered_agents (address, registered_at, registered_by)
SELECT agent, MIN(created_at), 'with its wallet'
FROM wallets GROUP BY agent;
INSERT INTO registered_agents (address, registered_at, registered_by)
SELECT address, 0, 'had appended before registration existed (migration 0009)'
FROM agents
WHERE address NOT IN (SELECT address FROM registered_agents);
