package io.switchboard.server.auth;

/** What a principal may do; each route requires one. */
public enum Scope {
  /** The OpenAI API, MCP tools, state and metrics. */
  INFERENCE,
  /** Managed instances, tool settings, workers' drain. */
  MANAGEMENT,
  /** What is a person's own: their profile, settings, API keys (guests included). */
  USER
}
