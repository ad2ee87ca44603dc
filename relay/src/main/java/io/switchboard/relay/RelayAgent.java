package io.switchboard.relay;

import com.fasterxml.jackson.databind.JsonNode;
import io.switchboard.protocol.BuildInfo;
import io.switchboard.protocol.CloseCodes;
import io.switchboard.protocol.Credentials;
import io.switchboard.protocol.DialIn;
import io.switchboard.protocol.DialUrl;
import io.switchboard.protocol.RelayMessage;
import io.switchboard.protocol.Secret;
import io.switchboard.protocol.WireCodec;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.http.WebSocket;
import io.vertx.core.http.WebSocketClientOptions;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
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
  /** The token the relay's clients must send, hashed; null when they need none. */
  private final Secret authToken;
  private final McpSession session;
  private final Context context;
  private final DialIn dialIn;
  private final Promise<Void> firstRegistration = Promise.promise();
  private volatile String relayId;
  private volatile int maxMessageBytes = 1 << 20;
  private boolean stopped;

  public RelayAgent(Vertx vertx, RelayConfig config, McpSession session) {
    this.vertx = vertx;
    this.config = config;
    this.authToken = Secret.ofNullable(config.authToken());
    this.session = session;
    this.context = vertx.getOrCreateContext();
    this.relayId = config.relayId();
    this.dialIn = new DialIn(vertx, new WebSocketClientOptions().setMaxFrameSize(16 << 20).setMaxMessageSize(16 << 20)
        .setConnectTimeout(15_000), DialUrl.connectOptions(config.serverUrl(), "/api/mcp/connect"), Duration.ofSeconds(1),
        config.reconnectMax(), 5_000, new Connection());
  }

  /** Connects; completes at the first registration, or fails when the server refuses the relay for good. */
  public Future<Void> start() {
    context.runOnContext(v -> dialIn.connect());
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
      dialIn.close(CloseCodes.NORMAL, "relay stopping").onComplete(ar -> done.complete());
    });
    return done.future();
  }

  /** The WebSocket's life, as the dial-in reports it. */
  private final class Connection implements DialIn.Agent {
    @Override
    public void opened(WebSocket ws) {
      ws.textMessageHandler(text -> onText(ws, text));
      ws.exceptionHandler(e -> log.debug("relay connection error: {}", e.getMessage()));
      ws.writeTextMessage(WireCodec.encode(new RelayMessage.Register(relayId, config.name(), config.clientKey(),
          BuildInfo.current().version())));
    }

    @Override
    public void beat(WebSocket ws) {
      ws.writeTextMessage(WireCodec.encode(new RelayMessage.Heartbeat(System.currentTimeMillis())));
    }

    @Override
    public void lost(WebSocket ws) {
      // Calls in flight answer into a closed socket, which drops them; the server has failed them already.
    }

    @Override
    public void rejected(short code, String reason) {
      stopped = true;
      firstRegistration.tryFail("refused by the server: " + reason);
    }

    @Override
    public boolean leaving() {
      return stopped;
    }
  }

  private void onText(WebSocket ws, String text) {
    dialIn.heard();
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
        dialIn.registered(registered.heartbeatIntervalMs());
        log.info("registered with {} as relay {}", dialIn.url(), relayId);
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
    if (authToken != null && !authToken.matches(Credentials.bearer(rpc.auth()))) {
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
}
