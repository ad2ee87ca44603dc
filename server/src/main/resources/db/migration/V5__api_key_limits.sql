-- An API key's own rate limit, per window, on top of its owner's role's (null: none of its own).
ALTER TABLE api_keys ADD COLUMN rate_requests INTEGER;
ALTER TABLE api_keys ADD COLUMN rate_tokens BIGINT;
