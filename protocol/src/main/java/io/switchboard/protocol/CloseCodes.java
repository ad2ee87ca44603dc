package io.switchboard.protocol;

/**
 * WebSocket close codes the server uses to reject or end a worker or relay connection. A worker
 * logs the code and reason; after {@link #UNAUTHORIZED}, {@link #UNEXPECTED_CLIENT_KEY} or
 * {@link #REPLACED} it does not reconnect: trying again cannot succeed, or would take the id back
 * from the live process that registered it after this one.
 */
public final class CloseCodes {
  public static final short NORMAL = 1000;
  /** The first message was not a valid {@code register}, or it did not come in time. */
  public static final short BAD_REGISTER = 4000;
  /** The server requires a client key and the worker sent none, or a wrong one. */
  public static final short UNAUTHORIZED = 4001;
  /** The worker sent a client key, but the server is configured without one. */
  public static final short UNEXPECTED_CLIENT_KEY = 4003;
  /** A newer connection registered with the same worker id. */
  public static final short REPLACED = 4008;
  /** The peer sent nothing for three heartbeat intervals. */
  public static final short HEARTBEAT_TIMEOUT = 4009;
  /** A lane landed on an event loop that one of the worker's connections is on already: dial again. */
  public static final short LANE_TAKEN = 4011;

  private CloseCodes() {}

  /** Whether a worker told to close with this code should give up rather than reconnect. */
  public static boolean permanent(short code) {
    return code == UNAUTHORIZED || code == UNEXPECTED_CLIENT_KEY || code == REPLACED;
  }
}
