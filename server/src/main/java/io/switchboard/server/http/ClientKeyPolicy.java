package io.switchboard.server.http;

import io.switchboard.protocol.CloseCodes;

/**
 * Spec 000's rule for agents that dial in (workers, relays): with a client key configured they must
 * send it; without one they must send none, so that a misconfigured agent fails at once instead of
 * believing it is protected.
 */
public final class ClientKeyPolicy {

  /** Why an agent is turned away: the close code and reason it is told. */
  public record Refusal(short code, String reason) {}

  private ClientKeyPolicy() {}

  /** Null when the agent may register, else why not. */
  public static Refusal check(Secret configured, String offered) {
    boolean sent = offered != null && !offered.isEmpty();
    if (configured == null && sent) {
      return new Refusal(CloseCodes.UNEXPECTED_CLIENT_KEY, "this server has no client key configured; start the agent without one");
    }
    if (configured != null && !sent) {
      return new Refusal(CloseCodes.UNAUTHORIZED, "client key required");
    }
    if (configured != null && !configured.matches(offered)) {
      return new Refusal(CloseCodes.UNAUTHORIZED, "invalid client key");
    }
    return null;
  }
}
