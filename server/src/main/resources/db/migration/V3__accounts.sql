-- People's accounts (spec 003): users and guests, their settings, sign-in sessions with rotating
-- refresh tokens, API keys, and the keys that sign access tokens. Secrets are kept as SHA-256 only.
CREATE TABLE users (
  id            VARCHAR(64)  PRIMARY KEY,
  username      VARCHAR(200) NOT NULL UNIQUE,
  email         VARCHAR(320) UNIQUE,
  full_name     VARCHAR(200),
  is_guest      BOOLEAN      NOT NULL,
  roles         VARCHAR(200) NOT NULL,
  created_at    BIGINT       NOT NULL,
  last_seen_at  BIGINT       NOT NULL
);

CREATE TABLE user_settings (
  user_id     VARCHAR(64) PRIMARY KEY,
  settings    TEXT        NOT NULL,
  updated_at  BIGINT      NOT NULL
);

-- One sign-in: its refresh tokens form a family; revoking the session refuses its access tokens at once.
CREATE TABLE sessions (
  id          VARCHAR(64) PRIMARY KEY,
  user_id     VARCHAR(64) NOT NULL,
  created_at  BIGINT      NOT NULL,
  expires_at  BIGINT      NOT NULL,
  revoked_at  BIGINT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE refresh_tokens (
  hash        VARCHAR(64) PRIMARY KEY,
  session_id  VARCHAR(64) NOT NULL,
  expires_at  BIGINT      NOT NULL,
  used_at     BIGINT,
  created_at  BIGINT      NOT NULL
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE api_keys (
  id          VARCHAR(64)  PRIMARY KEY,
  user_id     VARCHAR(64)  NOT NULL,
  name        VARCHAR(100) NOT NULL,
  hash        VARCHAR(64)  NOT NULL UNIQUE,
  prefix      VARCHAR(32)  NOT NULL,
  suffix      VARCHAR(8)   NOT NULL,
  expires_at  BIGINT       NOT NULL,
  created_at  BIGINT       NOT NULL
);
CREATE INDEX api_keys_user ON api_keys (user_id);

CREATE TABLE signing_keys (
  kid         VARCHAR(64) PRIMARY KEY,
  jwk         TEXT        NOT NULL,
  created_at  BIGINT      NOT NULL
);
