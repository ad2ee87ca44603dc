-- What an admin decided about an MCP tool: whether it is offered, and which patterns are cut from its results.
CREATE TABLE mcp_tool_settings (
  tool_id  VARCHAR(200) PRIMARY KEY,
  enabled  BOOLEAN      NOT NULL,
  filters  TEXT         NOT NULL,
  updated  BIGINT       NOT NULL
);
