package io.switchboard.server.mcp;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.modelcontextprotocol.client.transport.HttpClientStreamableHttpTransport;
import io.switchboard.protocol.Json;
import io.switchboard.protocol.RelayMessage;
import io.switchboard.relay.McpSession;
import io.switchboard.server.ServerConfig;
import io.switchboard.server.auth.Authenticator;
import io.switchboard.server.auth.Scope;
import io.switchboard.server.http.Admission;
import io.switchboard.server.http.Capability;
import io.switchboard.server.http.Mount;
import io.switchboard.server.http.WebSocketOnly;
import io.switchboard.server.metrics.Metrics;
import io.switchboard.server.state.StateSource;
import io.switchboard.server.store.Database;
import io.switchboard.vertx.Blocking;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import java.io.IOException;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@code mcp} plugin: MCP relays dial in at {@code /api/mcp/connect}, and MCP clients reach the
 * server behind a relay at {@code POST /api/mcp/id/{id}} with plain JSON-RPC (the Streamable HTTP
 * transport without a session or an SSE stream). Every failure of the path is a JSON-RPC error.
 */
public final class McpPlugin implements Capability, StateSource {

  private static final Logger log = LoggerFactory.getLogger(McpPlugin.class);
  private static final ObjectMapper JSON = Json.MAPPER;
  /** Spec 000's error code for failures of the relay path; {@code data.mcp} says which. */
  static final int RELAY_ERROR = -32000;

  private final Vertx vertx;
  private final RelayRegistry relays = new RelayRegistry();
  private final RelayConnection.Settings settings;
  private final Duration timeout;
  private final int maxInFlight;
  private final List<McpSession> configured = new ArrayList<>();
  private final McpToolRoutes toolRoutes;
  private final Metrics metrics;

  /**
   * @param database where the admin's tool settings are kept
   * @param metrics where relay calls are counted
   */
  public McpPlugin(Vertx vertx, ServerConfig config, Database database, Metrics metrics) {
    this.vertx = vertx;
    this.metrics = metrics;
    this.settings = new RelayConnection.Settings(config.heartbeatInterval().toMillis(), config.maxFrameBytes());
    this.timeout = config.requestTimeout();
    this.maxInFlight = 64;
    List<McpTools.Source> byUrl = new ArrayList<>();
    for (ServerConfig.McpServer server : config.mcpServers()) {
      McpSession session = new McpSession(() -> HttpClientStreamableHttpTransport.builder(base(server.url()))
          .endpoint(endpoint(server.url())).build(), server.url(), timeout);
      configured.add(session);
      byUrl.add(urlSource(server.name(), session));
    }
    this.toolRoutes = new McpToolRoutes(new McpTools(() -> {
      List<McpTools.Source> sources = new ArrayList<>(byUrl);
      relays.all().forEach(relay -> sources.add(relaySource(relay)));
      return sources;
    }), new ToolSettingsStore(database));
    metrics.gaugeRows("switchboard.relay.in.flight", "MCP calls waiting on each relay",
        () -> relays.all().stream().map(r -> new Metrics.Row(Map.of("relay", r.id()), r.inFlight())).toList());
  }

  /** Adds the routes: tools for whoever may infer, their settings for whoever may manage. */
  @Override
  public void mount(Mount mount) {
    Router web = mount.web();
    Admission admission = mount.admission();
    toolRoutes.mount(web, mount.auth().require(Scope.INFERENCE), mount.auth().require(Scope.MANAGEMENT));
    web.get("/api/mcp/connect").handler(admission.gate()).handler(WebSocketOnly.INSTANCE).handler(ctx -> connect(ctx, mount.auth()));
    web.route("/api/mcp/id/:id").failureHandler(ctx -> {
      int status = ctx.statusCode() == 413 ? 413 : ctx.statusCode() > 0 ? ctx.statusCode() : 500;
      reply(ctx.response(), status, error(null, status == 413 ? -32600 : -32603,
          status == 413 ? "the message is larger than the server accepts (max_body_bytes)" : "internal error", "MCP_LIMIT_EXCEEDED"));
    });
    web.post("/api/mcp/id/:id").handler(admission).handler(this::forward);
    web.route("/api/mcp/id/:id").handler(ctx -> {
      ctx.response().putHeader("Allow", "POST");
      reply(ctx.response(), 405, error(null, -32600, "only POST is served here: no SSE stream and no session to delete", null));
    });
  }

  private static final String VIEW = StateSource.resource("mcp.html");

  @Override
  public String id() {
    return "mcp";
  }

  @Override
  public String view() {
    return VIEW;
  }

  /** The state as the dashboard reads it. */
  record View(List<RelayView> relays, int configuredServers, List<ToolView> tools) {}

  record RelayView(String id, String name, int inFlight, long calls, long errors, List<String> tools) {}

  record ToolView(String id, String source, boolean enabled) {}

  /** The connected relays and their calls in flight. */
  @Override
  public JsonNode state() {
    List<McpTools.Tool> tools = toolRoutes.lastSeen();
    List<RelayView> relayViews = relays.all().stream().map(r -> new RelayView(r.id(), r.name(), r.inFlight(), r.calls(),
        r.failures(), tools.stream().filter(t -> t.source().equals(r.id())).map(McpTools.Tool::id).toList())).toList();
    List<ToolView> catalog = tools.stream().map(t -> new ToolView(t.id(), t.source(), toolRoutes.enabled(t.id()))).toList();
    return JSON.valueToTree(new View(relayViews, configured.size(), catalog));
  }

  /** Reads the admin's tool settings. */
  @Override
  public Future<Void> start() {
    return toolRoutes.load();
  }

  /** Closes the sessions with MCP servers configured by URL (the SDK blocks while it does). */
  @Override
  public Future<Void> stop() {
    return Blocking.call(vertx, () -> {
      configured.forEach(McpSession::close);
      return null;
    });
  }

  private McpTools.Source relaySource(RelayConnection relay) {
    return new McpTools.Source() {
      @Override
      public String name() {
        return relay.id();
      }

      @Override
      public Future<JsonNode> request(JsonNode message) {
        return relay.call(message, null, timeout).answer().compose(result -> result.status() == 401
            ? Future.failedFuture("relay " + relay.id() + " wants a token, so its tools are not in the catalog")
            : Future.succeededFuture(result.payload()));
      }
    };
  }

  /** A server configured by URL: its session opens at first use, on a virtual thread, since the SDK blocks. */
  private McpTools.Source urlSource(String name, McpSession session) {
    AtomicBoolean opened = new AtomicBoolean();
    return new McpTools.Source() {
      @Override
      public String name() {
        return name;
      }

      @Override
      public Future<JsonNode> request(JsonNode message) {
        return Blocking.call(vertx, () -> {
          synchronized (opened) {
            if (!opened.get()) {
              session.open();
              opened.set(true);
            }
          }
          return session.forward(message);
        });
      }
    };
  }

  private static String base(String url) {
    URI uri = URI.create(url);
    return uri.getScheme() + "://" + uri.getRawAuthority();
  }

  private static String endpoint(String url) {
    String path = URI.create(url).getRawPath();
    return path == null || path.isEmpty() ? "/mcp" : path;
  }

  private void connect(RoutingContext ctx, Authenticator auth) {
    ctx.request().toWebSocket()
        .onSuccess(ws -> new RelayConnection(vertx, ws, relays, auth, settings).start())
        .onFailure(e -> log.debug("relay WebSocket upgrade failed: {}", e.getMessage()));
  }

  private void forward(RoutingContext ctx) {
    HttpServerResponse response = ctx.response();
    Buffer body = ctx.body().buffer();
    JsonNode message;
    try {
      message = body == null || body.length() == 0 ? null : JSON.readTree(body.getBytes());
    } catch (IOException e) {
      reply(response, 400, error(null, -32700, "parse error: " + e.getMessage(), null));
      return;
    }
    if (message == null || !message.isObject() || !"2.0".equals(message.path("jsonrpc").asText())
        || message.path("method").asText().isBlank()) {
      reply(response, 400, error(message == null ? null : message.get("id"), -32600,
          "invalid request: send one JSON-RPC 2.0 request or notification with a method", null));
      return;
    }
    JsonNode id = message.get("id");
    String relayId = ctx.pathParam("id");
    RelayConnection relay = relays.get(relayId).orElse(null);
    if (relay == null) {
      reply(response, 404, error(id, RELAY_ERROR, "no MCP relay '" + relayId + "' is connected", "MCP_PROVIDER_UNAVAILABLE"));
      return;
    }
    if (relay.inFlight() >= maxInFlight) {
      response.putHeader("Retry-After", "1");
      reply(response, 429, error(id, RELAY_ERROR, "relay '" + relayId + "' has " + maxInFlight + " requests in flight; retry later",
          "MCP_LIMIT_EXCEEDED"));
      return;
    }
    RelayConnection.Call call = relay.call(message, ctx.request().getHeader("Authorization"), timeout);
    response.closeHandler(v -> relay.cancel(call.req()));
    call.answer().onComplete(ar -> {
      metrics.count("switchboard.mcp.calls", "JSON-RPC messages passed to relays, by relay, method and outcome",
          "relay", relayId, "method", message.path("method").asText(), "outcome",
          ar.failed() ? "unanswered" : ar.result().status() < 400 ? "answered" : "refused");
      if (response.closed()) {
        return;
      }
      if (ar.succeeded()) {
        RelayMessage.RpcResult result = ar.result();
        if (result.payload() == null) {
          response.setStatusCode(result.status()).end();
        } else {
          reply(response, result.status(), result.payload());
        }
      } else if (ar.cause() instanceof RelayConnection.TimedOut) {
        reply(response, 504, error(id, RELAY_ERROR, ar.cause().getMessage(), "MCP_TIMEOUT"));
      } else {
        reply(response, 502, error(id, RELAY_ERROR, ar.cause().getMessage(), "MCP_PROVIDER_UNAVAILABLE"));
      }
    });
  }

  /** A JSON-RPC error answer; {@code mcpCode}, when given, names the failure of the relay path in {@code data.mcp}. */
  static ObjectNode error(JsonNode id, int code, String message, String mcpCode) {
    ObjectNode answer = McpSession.error(id, code, message);
    if (mcpCode != null) {
      ((ObjectNode) answer.get("error")).putObject("data").put("mcp", mcpCode);
    }
    return answer;
  }

  static void reply(HttpServerResponse response, int status, JsonNode body) {
    if (!response.ended()) {
      response.setStatusCode(status).putHeader("Content-Type", "application/json").end(body.toString());
    }
  }
}
