package io.switchboard.faults;

import com.fasterxml.jackson.databind.JsonNode;
import io.switchboard.fakeupstream.FakeUpstream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A server to throw bad input at, with every operation its OpenAPI document lists: keys
 * configured (so auth is enforced), a worker serving {@code m}, a small body limit, an instance
 * {@code held} that exists but does not run, and no llama-server program.
 */
final class Api implements AutoCloseable {

  static final String KEY = "sk-good";
  static final int MAX_BODY = 65_536;

  /** One operation of the document, and whether it asks for credentials. */
  record Operation(String method, String template, boolean secured, boolean takesBody) {

    boolean hasParams() {
      return template.contains("{");
    }

    /** The path with each parameter set to {@code value}, except a model, which is {@code m}. */
    String path(String value) {
      return every(template.replace("{model}", "m"), value);
    }

    /** The path with every parameter, a model's too, set to {@code value}. */
    String pathAll(String value) {
      return every(template, value);
    }

    private static String every(String template, String value) {
      return template.replaceAll("\\{[A-Za-z]+\\}", java.util.regex.Matcher.quoteReplacement(value));
    }

    /** A path that names things that exist where the operation reads a body, so that the body is what is judged. */
    String livePath() {
      return template.startsWith("/api/v1/instances/{name}/proxy") ? path("absent")
          : template.startsWith("/api/v1/instances/{name}") && !template.endsWith("/start") && !template.endsWith("/restart")
              ? path("held") : path("absent");
    }

    /** A body the operation takes, to mangle. */
    String sample() {
      if (template.contains("chat/completions")) {
        return "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":3}";
      } else if (template.endsWith("/completions")) {
        return "{\"model\":\"m\",\"prompt\":\"hi\",\"max_tokens\":3}";
      } else if (template.contains("embeddings")) {
        return "{\"model\":\"m\",\"input\":[\"hi\",\"there\"]}";
      } else if (template.contains("rerank")) {
        return "{\"model\":\"m\",\"query\":\"q\",\"documents\":[\"a\",\"b\"]}";
      } else if (template.startsWith("/api/v1/instances")) {
        return "{\"model\":\"m.gguf\",\"command_override\":\"/bin/false\",\"idle_timeout\":\"1m\"}";
      } else if (template.startsWith("/api/mcp/id")) {
        return "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}";
      } else if (template.endsWith("tools/call")) {
        return "{\"name\":\"echo\",\"arguments\":{\"text\":\"hi\"}}";
      } else if (template.endsWith("/filters")) {
        return "{\"allow\":[\"a\"],\"deny\":[]}";
      }
      return "{\"enabled\":true}";
    }
  }

  final Cluster cluster;
  final Cluster.Server server;
  final List<Operation> operations = new ArrayList<>();

  Api() throws Exception {
    cluster = new Cluster();
    cluster.apiKey = KEY;
    try {
      server = start(cluster);
    } catch (Exception | AssertionError e) {
      cluster.close();
      throw e;
    }
  }

  /** Starts the server and its worker, makes {@code held}, and reads the operations from the document. */
  private Cluster.Server start(Cluster cluster) throws Exception {
    FakeUpstream upstream = cluster.fake(FakeUpstream.Behavior.defaults().withModels("m").withTokens(3, 0));
    Cluster.Server server = cluster.server("--api-key", KEY, "--max-body-bytes", String.valueOf(MAX_BODY),
        "--llama-server", "/nonexistent/llama-server");
    cluster.worker(server, "solo", upstream.baseUrl(), "--max-concurrency", "16");
    Cluster.eventually("the worker serves m", () -> cluster.servedBy(server, "m", 1));
    RawHttp.Answer held = RawHttp.send(server.port(), "POST", "/api/v1/instances/held", Map.of("Authorization", "Bearer " + KEY),
        "{\"model\":\"m.gguf\",\"command_override\":\"/bin/false\"}".getBytes(StandardCharsets.UTF_8), 10_000);
    if (held.status() != 201) {
      throw new IllegalStateException("cannot create the instance 'held': " + held);
    }
    JsonNode document = Cluster.JSON.readTree(RawHttp.send(server.port(), "GET", "/api/client/openapi.json", Map.of(), null, 10_000).body());
    document.path("paths").properties().forEach(path -> path.getValue().properties().forEach(op -> {
      String method = op.getKey().toUpperCase();
      if (List.of("GET", "POST", "PUT", "PATCH", "DELETE").contains(method)) {
        boolean secured = !op.getValue().path("security").isArray() || !op.getValue().path("security").isEmpty();
        operations.add(new Operation(method, path.getKey(), secured, op.getValue().has("requestBody")));
      }
    }));
    return server;
  }

  RawHttp.Answer send(String method, String path, Map<String, String> headers, byte[] body) {
    return RawHttp.send(server.port(), method, path, headers, body, 10_000);
  }

  /** With the good key and a JSON content type. */
  RawHttp.Answer call(Operation op, String path, byte[] body) {
    return send(op.method(), path, Map.of("Authorization", "Bearer " + KEY, "Content-Type", "application/json"), body);
  }

  @Override
  public void close() throws Exception {
    cluster.close();
  }
}
