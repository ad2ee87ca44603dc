package io.switchboard.server.auth;

/** What a principal may do; each route requires one. */
public enum Scope {
  /** The OpenAI API and MCP tools. */
  INFERENCE,
  /**
   * The server's running state: the dashboard's state, the JSON metrics, draining a worker. Every
   * key of the server's own has it (as it had before people had accounts); of people, admins only.
   */
  OPERATIONS,
  /** Managed instances, tool settings. */
  MANAGEMENT,
  /** What is a person's own: their profile, settings, API keys (guests included). */
  USER
}
