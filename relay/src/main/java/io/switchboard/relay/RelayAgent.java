package io.switchboard.relay;

import com.fasterxml.jackson.databind.JsonNode;
import io.switchboard.protocol.BuildInfo;
import io.switchboard.protocol.CloseCodes;
import io.switchboard.protocol.DialUrl;
import io.switchboard.protocol.RelayMessage;
import io.switchboard.protocol.WireCodec;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.http.WebSocket;
import io.vertx.core.http.WebSocketClient;
import io.vertx.core.http.WebSocketClientOptions;
import io.vertx.core.http.WebSocketConnectOptions;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Connects one MCP server to a Switchboard server: dials {@code /api/mcp/connect}, registers, and
 * answers each JSON-RPC message the server passes on through its {@link McpSession}. Reconnects
 * with backoff and registers again under the same id.
 */
public final class RelayAgent {

  private static final Logger log = LoggerFactory.getLogger(RelayAgent.class);
  /** The unauthorized JSON-RPC error of this relay, as MCP servers behind HTTP answer it. */
  static final int UNAUTHORIZED = -32001;

  private final Vertx vertx;
  private final RelayConfig config;
  private final McpSession session;
  private final Context context;
  private final WebSocketClient client;
  private final WebSocketConnectOptions connectOptions;
  private final Promise<Void> firstRegistration = Promise.promise();
  private WebSocket socket;
  private volatile String relayId;
  private volatile int maxMessageBytes = 1 << 20;
  private long backoffMs = 1000;
  private long heartbeatTimer = -1;
  private long lastHeard;
  private long heartbeatMs = 5000;
  private boolean stopped;

  public RelayAgent(Vertx vertx, RelayConfig config, McpSession session) {
    this.vertx = vertx;
    this.config = config;
    this.session = session;
    this.context = vertx.getOrCreateContext();
    this.relayId = config.relayId();
    this.client = vertx.createWebSocketClient(new WebSocketClientOptions().setMaxFrameSize(16 << 20)
        .setMaxMessageSize(16 << 20).setConnectTimeout(15_000));
    this.connectOptions = DialUrl.connectOptions(config.serverUrl(), "/api/mcp/connect");
  }

  /** Connects; completes at the first registration, or fails when the server refuses the relay for good. */
  public Future<Void> start() {
    context.runOnContext(v -> connect());
    return firstRegistration.future();
  }

  /** The id the server knows this relay by, once registered. */
  public String relayId() {
    return relayId;
  }

  public Future<Void> stop() {
    Promise<Void> done = Promise.promise();
    context.runOnContext(v -> {
      stopped = true;
      if (heartbeatTimer >= 0) {
        vertx.cancelTimer(heartbeatTimer);
      }
      Future<Void> close = socket == null ? Future.succeededFuture() : socket.close(CloseCodes.NORMAL, "relay stopping");
      close.eventually(client::close).onComplete(ar -> done.complete());
    });
    return done.future();
  }

  private void connect() {
    if (stopped) {
      return;
    }
    client.connect(connectOptions).onComplete(ar -> {
      if (ar.failed()) {
        log.warn("cannot connect to {}: {}; retrying in {} ms", DialUrl.describe(connectOptions), ar.cause().getMessage(), backoffMs);
        reconnectLater();
        return;
      }
      WebSocket ws = ar.result();
      socket = ws;
      lastHeard = System.nanoTime();
      ws.textMessageHandler(text -> onText(ws, text));
      ws.closeHandler(v -> onClose(ws));
      ws.exceptionHandler(e -> log.debug("relay connection error: {}", e.getMessage()));
      ws.writeTextMessage(WireCodec.encode(new RelayMessage.Register(relayId, config.name(), config.clientKey(),
          BuildInfo.current().version())));
    });
  }

  private void onText(WebSocket ws, String text) {
    lastHeard = System.nanoTime();
    RelayMessage message;
    try {
      message = WireCodec.decodeRelay(text);
    } catch (IllegalArgumentException e) {
      log.warn("the server sent an unreadable message: {}", e.getMessage());
      return;
    }
    switch (message) {
      case RelayMessage.Registered registered -> {
        relayId = registered.id();
        maxMessageBytes = registered.maxMessageBytes();
        heartbeatMs = registered.heartbeatIntervalMs();
        backoffMs = 1000;
        armHeartbeat(ws);
        log.info("registered with {} as relay {}", DialUrl.describe(connectOptions), relayId);
        firstRegistration.tryComplete();
      }
      case RelayMessage.Rpc rpc -> Thread.ofVirtual().start(() -> answer(ws, rpc));
      case RelayMessage.Heartbeat h -> { }
      default -> log.debug("ignored {}", message);
    }
  }

  private void answer(WebSocket ws, RelayMessage.Rpc rpc) {
    JsonNode id = rpc.payload().get("id");
    RelayMessage.RpcResult result;
    if (config.authToken() != null && !tokenMatches(rpc.auth())) {
      result = new RelayMessage.RpcResult(rpc.req(), 401, McpSession.error(id, UNAUTHORIZED,
          "this MCP relay needs 'Authorization: Bearer <token>'"));
    } else {
      JsonNode answer = session.forward(rpc.payload());
      result = answer == null ? new RelayMessage.RpcResult(rpc.req(), 202, null)
          : new RelayMessage.RpcResult(rpc.req(), answer.has("error") && answer.path("error").path("code").asInt() == McpSession.SERVER_ERROR
              ? 502 : 200, answer);
    }
    String encoded = WireCodec.encode(result);
    int size = encoded.getBytes(StandardCharsets.UTF_8).length;
    if (size > maxMessageBytes) {
      encoded = WireCodec.encode(new RelayMessage.RpcResult(rpc.req(), 502, McpSession.error(id, McpSession.SERVER_ERROR,
          "the MCP server's answer is " + size + " bytes, more than the " + maxMessageBytes + " the Switchboard server accepts")));
    }
    String frame = encoded;
    context.runOnContext(v -> {
      if (!ws.isClosed()) {
        ws.writeTextMessage(frame);
      }
    });
  }

  private boolean tokenMatches(String auth) {
    String expected = "Bearer " + config.authToken();
    return auth != null && MessageDigest.isEqual(expected.getBytes(StandardCharsets.UTF_8), auth.getBytes(StandardCharsets.UTF_8));
  }

  private void armHeartbeat(WebSocket ws) {
    if (heartbeatTimer >= 0) {
      vertx.cancelTimer(heartbeatTimer);
    }
    heartbeatTimer = vertx.setPeriodic(heartbeatMs, t -> {
      if (System.nanoTime() - lastHeard > 3_000_000L * heartbeatMs) {
        log.warn("no word from the server for {} ms; reconnecting", 3 * heartbeatMs);
        ws.close();
        return;
      }
      ws.writeTextMessage(WireCodec.encode(new RelayMessage.Heartbeat(System.currentTimeMillis())));
    });
  }

  private void onClose(WebSocket ws) {
    if (ws != socket) {
      return;
    }
    if (heartbeatTimer >= 0) {
      vertx.cancelTimer(heartbeatTimer);
      heartbeatTimer = -1;
    }
    Short code = ws.closeStatusCode();
    if (code != null && CloseCodes.permanent(code)) {
      log.error("the server refused this relay for good ({} {}); stopping", code, ws.closeReason());
      stopped = true;
      firstRegistration.tryFail("refused by the server: " + ws.closeReason());
      return;
    }
    if (!stopped) {
      log.warn("disconnected from the server ({}); reconnecting in {} ms", code, backoffMs);
      reconnectLater();
    }
  }

  private void reconnectLater() {
    long wait = backoffMs;
    backoffMs = Math.min(backoffMs * 2, config.reconnectMax().toMillis());
    vertx.setTimer(wait, t -> connect());
  }
}
