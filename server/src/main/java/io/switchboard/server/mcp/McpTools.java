package io.switchboard.server.mcp;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vertx.core.Future;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The tools of every MCP server the hub reaches (through relays, or by URL), as one catalog. A
 * tool's id is its name, or {@code <source>__<name>} when two servers offer the same name. The
 * admin's settings decide which tools are offered and what is cut from their results.
 */
final class McpTools {

  private static final Logger log = LoggerFactory.getLogger(McpTools.class);
  private static final int MAX_PAGES = 20;

  /** One MCP server the catalog draws from. */
  interface Source {
    String name();

    /** Sends one JSON-RPC request; completes with the JSON-RPC answer. */
    Future<JsonNode> request(JsonNode message);
  }

  /** A tool in the catalog: its id, its name at its server, the server, and its MCP definition. */
  record Tool(String id, String name, String source, JsonNode definition) {}

  private final Supplier<List<Source>> sources;
  private volatile List<Tool> lastSeen = List.of();

  McpTools(Supplier<List<Source>> sources) {
    this.sources = sources;
  }

  /** Every tool of every source that answers; a source that fails is left out and logged. */
  Future<List<Tool>> all() {
    List<Source> current = sources.get();
    List<Future<List<JsonNode>>> listings = current.stream().map(source -> listOf(source, null, new ArrayList<>(), 1)
        .otherwise(e -> {
          log.warn("cannot list the tools of MCP server {}: {}", source.name(), e.getMessage());
          return List.of();
        })).toList();
    return Future.all(listings).map(done -> {
      Map<String, Integer> seen = new HashMap<>();
      for (int i = 0; i < current.size(); i++) {
        listings.get(i).result().forEach(tool -> seen.merge(tool.path("name").asText(), 1, Integer::sum));
      }
      List<Tool> tools = new ArrayList<>();
      for (int i = 0; i < current.size(); i++) {
        String source = current.get(i).name();
        for (JsonNode definition : listings.get(i).result()) {
          String name = definition.path("name").asText();
          tools.add(new Tool(seen.get(name) > 1 ? source + "__" + name : name, name, source, definition));
        }
      }
      lastSeen = List.copyOf(tools);
      return tools;
    });
  }

  /** The catalog as the last listing found it, for the state API, which must not wait on servers. */
  List<Tool> lastSeen() {
    return lastSeen;
  }

  /** Calls a tool by catalog id with the client's JSON-RPC request; the answer carries the client's id. */
  Future<JsonNode> call(Tool tool, JsonNode request) {
    Source source = sources.get().stream().filter(s -> s.name().equals(tool.source())).findFirst().orElse(null);
    if (source == null) {
      return Future.failedFuture(new IllegalStateException("MCP server " + tool.source() + " is gone"));
    }
    ObjectNode forwarded = ((ObjectNode) request).deepCopy();
    ((ObjectNode) forwarded.with("params")).put("name", tool.name());
    return source.request(forwarded);
  }

  /** Cuts every match of the patterns out of the text parts of a tool result. */
  static JsonNode filter(JsonNode answer, List<Pattern> patterns) {
    if (patterns.isEmpty()) {
      return answer;
    }
    for (JsonNode part : answer.path("result").path("content")) {
      if (part.path("type").asText().equals("text") && part instanceof ObjectNode text) {
        String value = text.path("text").asText();
        for (Pattern pattern : patterns) {
          value = pattern.matcher(value).replaceAll("[filtered]");
        }
        text.put("text", value);
      }
    }
    return answer;
  }

  private Future<List<JsonNode>> listOf(Source source, String cursor, List<JsonNode> collected, int page) {
    ObjectNode request = JsonNodeFactory.instance.objectNode().put("jsonrpc", "2.0").put("id", "tools-" + page)
        .put("method", "tools/list");
    if (cursor != null) {
      request.putObject("params").put("cursor", cursor);
    }
    return source.request(request).compose(answer -> {
      if (answer.has("error")) {
        return Future.failedFuture(answer.path("error").path("message").asText("tools/list failed"));
      }
      answer.path("result").path("tools").forEach(collected::add);
      String next = answer.path("result").path("nextCursor").asText(null);
      return next == null || page >= MAX_PAGES ? Future.succeededFuture(collected) : listOf(source, next, collected, page + 1);
    });
  }
}
