-- Managed instances: the configuration a user gave, so that a restarted server knows them again.
-- Their status is not stored: it belongs to the processes of the running server.
CREATE TABLE instances (
  name    VARCHAR(64) PRIMARY KEY,
  created BIGINT      NOT NULL,
  config  TEXT        NOT NULL
);
