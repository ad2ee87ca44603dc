package io.switchboard.server.http;

import io.switchboard.protocol.CloseCodes;
import io.switchboard.server.auth.Authenticator;
import io.vertx.core.Vertx;
import io.vertx.core.http.ServerWebSocket;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The server's end of an agent's WebSocket (a worker's, a relay's), as far as every agent is the
 * same: it must register within three heartbeat intervals and with the client key the
 * {@link Authenticator} admits; once registered it gets a heartbeat every interval, and is dropped
 * when it has sent nothing for three. What the agent's messages mean is its connection's business.
 */
public final class AgentSocket {

  private static final Logger log = LoggerFactory.getLogger(AgentSocket.class);

  /** What the socket asks of the connection it carries. */
  public interface Agent {
    boolean registered();

    /** Send one heartbeat. */
    void beat();

    /** The agent went silent and its socket was closed. */
    void dropped();

    /** The agent, for logs. */
    String describe();
  }

  private final Vertx vertx;
  private final ServerWebSocket ws;
  private final String kind;
  private final Authenticator auth;
  private final long timer;
  private volatile long lastHeard = System.nanoTime();
  private volatile boolean ended;

  /**
   * @param kind what the agent is, for logs ({@code worker}, {@code MCP relay})
   */
  public AgentSocket(Vertx vertx, ServerWebSocket ws, String kind, Authenticator auth, long heartbeatMs, Agent agent) {
    this.vertx = vertx;
    this.ws = ws;
    this.kind = kind;
    this.auth = auth;
    long limitNanos = 3_000_000L * heartbeatMs;
    long registerBy = System.nanoTime() + limitNanos;
    this.timer = vertx.setPeriodic(heartbeatMs, t -> {
      if (!agent.registered()) {
        if (System.nanoTime() > registerBy) {
          reject(CloseCodes.BAD_REGISTER, "no register message in time");
        }
      } else if (System.nanoTime() - lastHeard > limitNanos) {
        log.warn("{} sent nothing for {} ms; dropping it", agent.describe(), 3 * heartbeatMs);
        ws.close(CloseCodes.HEARTBEAT_TIMEOUT, "heartbeat timeout");
        agent.dropped();
      } else {
        agent.beat();
      }
    });
  }

  /** The agent sent something. */
  public void heard() {
    lastHeard = System.nanoTime();
  }

  /**
   * Whether the client key the agent offered (in its first message, else as the upgrade's bearer
   * token) lets it in; when not, the socket is closed with the reason.
   */
  public boolean admit(String clientKey) {
    Authenticator.AgentRefusal refusal = auth.admitAgent(clientKey, ws.headers().get("Authorization"));
    if (refusal != null) {
      reject(refusal.code(), refusal.reason());
    }
    return refusal == null;
  }

  /** Turns the agent away with a close code and a reason it can act on. */
  public void reject(short code, String reason) {
    log.warn("rejecting a {} from {}: {}", kind, ws.remoteAddress(), reason);
    ws.close(code, reason);
  }

  /** Writes one text message, unless the connection is over. */
  public void send(String text) {
    if (!ended) {
      ws.writeTextMessage(text);
    }
  }

  /** A newer connection of the same agent took this one's place: this one closes, saying so. */
  public void replace(String sameWhat) {
    ws.close(CloseCodes.REPLACED, "replaced by a newer connection with the same " + sameWhat);
    end();
  }

  /**
   * The connection is over: the clock stops and nothing more is sent.
   *
   * @return true the first time only, so that what follows a connection's end happens once
   */
  public synchronized boolean end() {
    if (ended) {
      return false;
    }
    ended = true;
    vertx.cancelTimer(timer);
    return true;
  }

  public boolean ended() {
    return ended;
  }
}
