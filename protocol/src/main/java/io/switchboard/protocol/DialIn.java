package io.switchboard.protocol;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.WebSocket;
import io.vertx.core.http.WebSocketClient;
import io.vertx.core.http.WebSocketClientOptions;
import io.vertx.core.http.WebSocketConnectOptions;
import java.time.Duration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An agent's WebSocket to the server (a worker's, a relay's): dialed, dialed again after a loss with
 * a backoff that doubles up to a ceiling, kept alive with heartbeats, and given up when the server
 * has said nothing for three of them or closes it with a permanent code. The agent keeps only its own
 * messages: it registers when told the socket is {@linkplain Agent#opened open}, and answers the rest.
 * Every call and callback runs on the context it was made on.
 */
public final class DialIn {

  private static final Logger log = LoggerFactory.getLogger(DialIn.class);

  /** What a dial-in asks of its agent. */
  public interface Agent {
    /** A new connection: set its message handlers and send the register message. */
    void opened(WebSocket ws);

    /** Send one heartbeat (on this connection, and on any others the agent holds). */
    void beat(WebSocket ws);

    /** The connection is gone, for whatever reason: what rode on it is lost. */
    void lost(WebSocket ws);

    /** The server refused the agent for good: no more dialing. */
    void rejected(short code, String reason);

    /** Whether the agent is leaving (stopped, drained): a lost connection is then not dialed again. */
    boolean leaving();
  }

  private final Vertx vertx;
  private final WebSocketClient client;
  private final WebSocketConnectOptions options;
  private final String url;
  private final Duration reconnectInitial;
  private final Duration reconnectMax;
  private final Agent agent;
  private WebSocket socket;
  private long backoffMs;
  private long heartbeatMs;
  private long heartbeatTimer = -1;
  private long lastHeard;
  private boolean closed;

  /**
   * @param heartbeatMs the interval until the server names its own
   */
  public DialIn(Vertx vertx, WebSocketClientOptions clientOptions, WebSocketConnectOptions options, Duration reconnectInitial,
      Duration reconnectMax, long heartbeatMs, Agent agent) {
    this.vertx = vertx;
    this.client = vertx.createWebSocketClient(clientOptions);
    this.options = options;
    this.url = DialUrl.describe(options);
    this.reconnectInitial = reconnectInitial;
    this.reconnectMax = reconnectMax;
    this.backoffMs = reconnectInitial.toMillis();
    this.heartbeatMs = heartbeatMs;
    this.agent = agent;
  }

  /** Where it dials, for logs. */
  public String url() {
    return url;
  }

  /** The open connection, or null between connections. */
  public WebSocket socket() {
    return socket;
  }

  /** Dials; a failure is retried after the backoff. */
  public void connect() {
    if (closed) {
      return;
    }
    client.connect(options).onComplete(ar -> {
      if (ar.failed()) {
        log.warn("cannot connect to {}: {}; retrying in {} ms", url, ar.cause().getMessage(), backoffMs);
        reconnectLater();
        return;
      }
      WebSocket ws = ar.result();
      if (closed) {
        ws.close();
        return;
      }
      socket = ws;
      lastHeard = System.nanoTime();
      ws.closeHandler(v -> onClose(ws));
      agent.opened(ws);
      armHeartbeat();
    });
  }

  /** One more connection to the same place, beside the first (a worker's lanes); not watched or redialed. */
  public Future<WebSocket> dialAnother() {
    return client.connect(options);
  }

  /** The server took the register message: the backoff starts over, and heartbeats go at its interval. */
  public void registered(long serverHeartbeatMs) {
    backoffMs = reconnectInitial.toMillis();
    if (serverHeartbeatMs > 0 && serverHeartbeatMs != heartbeatMs) {
      heartbeatMs = serverHeartbeatMs;
      armHeartbeat();
    }
  }

  /** The server said something: it is alive. */
  public void heard() {
    lastHeard = System.nanoTime();
  }

  /** Closes the connection with this code and reason and stops dialing; completes once closed. */
  public Future<Void> close(short code, String reason) {
    closed = true;
    cancelHeartbeat();
    WebSocket ws = socket;
    Future<Void> close = ws == null ? Future.succeededFuture() : ws.close(code, reason);
    return close.eventually(client::close);
  }

  private void armHeartbeat() {
    cancelHeartbeat();
    heartbeatTimer = vertx.setPeriodic(heartbeatMs, t -> {
      WebSocket ws = socket;
      if (ws == null) {
        return;
      }
      if (System.nanoTime() - lastHeard > 3_000_000L * heartbeatMs) {
        log.warn("no word from the server for {} ms; reconnecting", 3 * heartbeatMs);
        ws.close(CloseCodes.HEARTBEAT_TIMEOUT, "heartbeat timeout");
        return;
      }
      agent.beat(ws);
    });
  }

  private void cancelHeartbeat() {
    if (heartbeatTimer >= 0) {
      vertx.cancelTimer(heartbeatTimer);
      heartbeatTimer = -1;
    }
  }

  private void onClose(WebSocket ws) {
    if (ws != socket) {
      return;
    }
    socket = null;
    cancelHeartbeat();
    agent.lost(ws);
    Short code = ws.closeStatusCode();
    String reason = ws.closeReason();
    if (code != null && CloseCodes.permanent(code)) {
      log.error("the server refused this agent for good: {} (close code {}); not reconnecting", reason, code);
      closed = true;
      client.close();
      agent.rejected(code, reason);
      return;
    }
    if (closed || agent.leaving()) {
      return;
    }
    log.warn("disconnected from the server ({}{}); reconnecting in {} ms",
        code == null ? "connection lost" : "close code " + code, reason == null ? "" : ": " + reason, backoffMs);
    reconnectLater();
  }

  private void reconnectLater() {
    if (closed) {
      return;
    }
    long delay = backoffMs;
    backoffMs = Math.min(backoffMs * 2, reconnectMax.toMillis());
    vertx.setTimer(Math.max(1, delay), t -> connect());
  }
}
