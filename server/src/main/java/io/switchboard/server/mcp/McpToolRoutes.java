package io.switchboard.server.mcp;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.switchboard.protocol.Json;
import io.switchboard.server.http.ApiError;
import io.switchboard.server.http.ApiException;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.buffer.Buffer;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Spec 003's MCP tools API: {@code POST /v1/mcp/tools/list} and {@code /call} (JSON-RPC) over the
 * catalog of {@link McpTools}, and the admin's view of it under {@code /v1/admin/mcp/tools}.
 */
final class McpToolRoutes {

  private static final ObjectMapper JSON = Json.MAPPER;

  private final McpTools tools;
  private final ToolSettingsStore store;
  private final Map<String, ToolSettingsStore.Settings> settings = new ConcurrentHashMap<>();

  McpToolRoutes(McpTools tools, ToolSettingsStore store) {
    this.tools = tools;
    this.store = store;
  }

  /** Reads the stored settings; until then every tool is enabled and unfiltered. */
  Future<Void> load() {
    return store.all().map(stored -> {
      settings.putAll(stored);
      return null;
    });
  }

  void mount(Router web, Handler<RoutingContext> userAuth, Handler<RoutingContext> adminAuth) {
    web.post("/v1/mcp/tools/list").handler(userAuth).handler(this::list);
    web.post("/v1/mcp/tools/call").handler(userAuth).handler(this::call);
    web.get("/v1/admin/mcp/tools").handler(adminAuth).handler(this::adminList);
    web.get("/v1/admin/mcp/tools/:toolId").handler(adminAuth).handler(ctx -> adminOne(ctx, null));
    web.patch("/v1/admin/mcp/tools/:toolId").handler(adminAuth).handler(ctx -> adminOne(ctx, this::enable));
    web.put("/v1/admin/mcp/tools/:toolId/filters").handler(adminAuth).handler(ctx -> adminOne(ctx, this::setFilters));
  }

  /** The tools the last listing found, with whether each is enabled. */
  List<McpTools.Tool> lastSeen() {
    return tools.lastSeen();
  }

  boolean enabled(String toolId) {
    return settingsOf(toolId).enabled();
  }

  private ToolSettingsStore.Settings settingsOf(String toolId) {
    return settings.getOrDefault(toolId, ToolSettingsStore.Settings.defaults(toolId));
  }

  private void list(RoutingContext ctx) {
    JsonNode request = jsonRpc(ctx);
    if (request == null) {
      return;
    }
    tools.all().onComplete(ar -> {
      if (ar.failed()) {
        McpPlugin.reply(ctx.response(), 502, McpPlugin.error(request.get("id"), McpPlugin.RELAY_ERROR, ar.cause().getMessage(), null));
        return;
      }
      ObjectNode answer = answer(request.get("id"));
      ArrayNode list = answer.putObject("result").putArray("tools");
      ar.result().stream().filter(tool -> settingsOf(tool.id()).enabled())
          .forEach(tool -> list.add(((ObjectNode) tool.definition().deepCopy()).put("name", tool.id())));
      McpPlugin.reply(ctx.response(), 200, answer);
    });
  }

  private void call(RoutingContext ctx) {
    JsonNode request = jsonRpc(ctx);
    if (request == null) {
      return;
    }
    JsonNode id = request.get("id");
    String toolId = request.path("params").path("name").asText("");
    if (toolId.isEmpty()) {
      McpPlugin.reply(ctx.response(), 400, McpPlugin.error(id, -32602, "params.name must name a tool", null));
      return;
    }
    tools.all().compose(all -> {
      McpTools.Tool tool = all.stream().filter(t -> t.id().equals(toolId)).findFirst().orElse(null);
      if (tool == null || !settingsOf(toolId).enabled()) {
        return Future.succeededFuture(McpPlugin.error(id, -32602, tool == null ? "no MCP tool '" + toolId + "'"
            : "MCP tool '" + toolId + "' is disabled", null));
      }
      List<Pattern> filters = settingsOf(toolId).disallowedKeywords().stream().map(Pattern::compile).toList();
      return tools.call(tool, request).map(answer -> McpTools.filter(answer, filters));
    }).onComplete(ar -> {
      if (ar.failed()) {
        McpPlugin.reply(ctx.response(), 502, McpPlugin.error(id, McpPlugin.RELAY_ERROR, ar.cause().getMessage(), "MCP_PROVIDER_UNAVAILABLE"));
      } else {
        McpPlugin.reply(ctx.response(), 200, ar.result());
      }
    });
  }

  private void adminList(RoutingContext ctx) {
    tools.all().onComplete(ar -> {
      if (ar.failed()) {
        ApiException.of(ar.cause()).send(ctx.response());
        return;
      }
      ObjectNode body = JsonNodeFactory.instance.objectNode().put("object", "list");
      ArrayNode data = body.putArray("data");
      ar.result().forEach(tool -> data.add(adminView(tool)));
      McpPlugin.reply(ctx.response(), 200, body);
    });
  }

  /** Shows one tool; with {@code change}, first applies it to the tool's settings and stores them. */
  private void adminOne(RoutingContext ctx, Change change) {
    String toolId = ctx.pathParam("toolId");
    tools.all().onComplete(ar -> {
      McpTools.Tool tool = ar.failed() ? null : ar.result().stream().filter(t -> t.id().equals(toolId)).findFirst().orElse(null);
      if (tool == null) {
        ApiError.notFound("no MCP tool '" + toolId + "' is connected").send(ctx.response());
        return;
      }
      if (change == null) {
        McpPlugin.reply(ctx.response(), 200, adminView(tool));
        return;
      }
      ToolSettingsStore.Settings next;
      try {
        JsonNode body = ctx.body().buffer() == null ? null : JSON.readTree(ctx.body().buffer().getBytes());
        next = change.apply(settingsOf(toolId), body);
      } catch (IOException e) {
        ApiError.invalidJson(e.getMessage()).send(ctx.response());
        return;
      } catch (IllegalArgumentException e) {
        ApiError.badRequest(e.getMessage()).send(ctx.response());
        return;
      }
      store.save(next).onComplete(saved -> {
        if (saved.failed()) {
          ApiException.of(saved.cause()).send(ctx.response());
          return;
        }
        settings.put(toolId, next);
        McpPlugin.reply(ctx.response(), 200, adminView(tool));
      });
    });
  }

  private interface Change {
    ToolSettingsStore.Settings apply(ToolSettingsStore.Settings current, JsonNode body);
  }

  private ToolSettingsStore.Settings enable(ToolSettingsStore.Settings current, JsonNode body) {
    JsonNode enabled = body == null ? null : body.has("enabled") ? body.get("enabled") : body.get("is_active");
    if (enabled == null || !enabled.isBoolean()) {
      throw new IllegalArgumentException("send {\"enabled\": true} or {\"enabled\": false}");
    }
    return new ToolSettingsStore.Settings(current.toolId(), enabled.booleanValue(), current.disallowedKeywords(),
        System.currentTimeMillis() / 1000);
  }

  private ToolSettingsStore.Settings setFilters(ToolSettingsStore.Settings current, JsonNode body) {
    JsonNode keywords = body == null ? null : body.get("disallowed_keywords");
    if (keywords == null || !keywords.isArray()) {
      throw new IllegalArgumentException("send {\"disallowed_keywords\": [\"regular expression\", ...]}");
    }
    List<String> patterns = new ArrayList<>();
    for (JsonNode keyword : keywords) {
      try {
        Pattern.compile(keyword.asText());
      } catch (PatternSyntaxException e) {
        throw new IllegalArgumentException("'" + keyword.asText() + "' is not a regular expression: " + e.getDescription());
      }
      patterns.add(keyword.asText());
    }
    return new ToolSettingsStore.Settings(current.toolId(), current.enabled(), List.copyOf(patterns), System.currentTimeMillis() / 1000);
  }

  private ObjectNode adminView(McpTools.Tool tool) {
    ToolSettingsStore.Settings s = settingsOf(tool.id());
    ObjectNode view = JsonNodeFactory.instance.objectNode()
        .put("id", tool.id())
        .put("name", tool.name())
        .put("source", tool.source())
        .put("description", tool.definition().path("description").asText(""))
        .put("enabled", s.enabled());
    s.disallowedKeywords().forEach(view.putArray("disallowed_keywords")::add);
    if (s.updated() > 0) {
      view.put("updated_at", s.updated());
    }
    return view;
  }

  /** The request as JSON-RPC, or null after answering 400. */
  private static JsonNode jsonRpc(RoutingContext ctx) {
    Buffer body = ctx.body().buffer();
    JsonNode request;
    try {
      request = body == null || body.length() == 0 ? null : JSON.readTree(body.getBytes());
    } catch (IOException e) {
      McpPlugin.reply(ctx.response(), 400, McpPlugin.error(null, -32700, "parse error: " + e.getMessage(), null));
      return null;
    }
    if (request == null || !request.isObject() || !"2.0".equals(request.path("jsonrpc").asText())) {
      McpPlugin.reply(ctx.response(), 400, McpPlugin.error(null, -32600, "send a JSON-RPC 2.0 request", null));
      return null;
    }
    return request;
  }

  private static ObjectNode answer(JsonNode id) {
    ObjectNode answer = JsonNodeFactory.instance.objectNode().put("jsonrpc", "2.0");
    answer.set("id", id == null ? JsonNodeFactory.instance.nullNode() : id);
    return answer;
  }
}
