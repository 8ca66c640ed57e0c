-- A registered agent's label: what an officer knows it by ("support bot", "treasury agent"),
-- given by the admin who registers it. Empty when none was given.
ALTER TABLE registered_agents ADD COLUMN label TEXT NOT NULL DEFAULT '';
