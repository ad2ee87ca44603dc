-- Sign-in with an OpenID Connect provider: each provider identity (issuer and subject) belongs to a
-- local user; each login in progress keeps its state server-side, single use and short-lived.
CREATE TABLE user_identities (
  issuer      VARCHAR(300) NOT NULL,
  subject     VARCHAR(300) NOT NULL,
  user_id     VARCHAR(64)  NOT NULL,
  created_at  BIGINT       NOT NULL,
  PRIMARY KEY (issuer, subject)
);
CREATE INDEX user_identities_user ON user_identities (user_id);

CREATE TABLE oidc_logins (
  state         VARCHAR(128)  PRIMARY KEY,
  verifier      VARCHAR(128)  NOT NULL,
  nonce         VARCHAR(128)  NOT NULL,
  redirect_url  VARCHAR(2000) NOT NULL,
  expires_at    BIGINT        NOT NULL
);
