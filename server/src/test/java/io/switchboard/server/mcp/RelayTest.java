package io.switchboard.server.mcp;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.modelcontextprotocol.client.McpClient;
import io.modelcontextprotocol.client.McpSyncClient;
import io.modelcontextprotocol.client.transport.HttpClientStreamableHttpTransport;
import io.modelcontextprotocol.client.transport.ServerParameters;
import io.modelcontextprotocol.client.transport.StdioClientTransport;
import io.modelcontextprotocol.json.McpJsonDefaults;
import io.modelcontextprotocol.server.McpServer;
import io.modelcontextprotocol.server.McpSyncServer;
import io.modelcontextprotocol.server.transport.HttpServletStreamableServerTransportProvider;
import io.modelcontextprotocol.spec.McpSchema;
import io.switchboard.relay.McpSession;
import io.switchboard.relay.RelayAgent;
import io.switchboard.relay.RelayConfig;
import io.switchboard.server.ServerConfig;
import io.switchboard.server.SwitchboardServer;
import io.vertx.core.Vertx;
import io.vertx.core.http.WebSocket;
import io.vertx.core.http.WebSocketClient;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.NetworkConnector;
import org.eclipse.jetty.server.Server;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Real MCP peers on both ends: SDK servers (stdio and Streamable HTTP) behind relays, and the SDK
 * client calling through {@code POST /api/mcp/id/{id}}.
 */
class RelayTest {

  private static final ObjectMapper JSON = new ObjectMapper();

  private final Vertx vertx = Vertx.vertx();
  private final HttpClient http = HttpClient.newHttpClient();
  private SwitchboardServer server;
  private ServerConfig config;
  private McpSession stdio;
  private RelayAgent relay;

  @BeforeEach
  void start() throws Exception {
    config = new ServerConfig("127.0.0.1", 0, Files.createTempDirectory("switchboard-mcp"), null, "ck",
        Duration.ofSeconds(5), 100, Duration.ofSeconds(5), Duration.ofSeconds(5), Duration.ofMillis(500), 1L << 20, 256 * 1024,
        Duration.ofMinutes(1), List.of(), null, null, null, null, null, null, null, null, null, null, null);
    server = SwitchboardServer.start(vertx, config).await();
    String java = ProcessHandle.current().info().command().orElse("java");
    stdio = new McpSession(() -> new StdioClientTransport(ServerParameters.builder(java)
        .args("-Dlogback.configurationFile=logback-stderr.xml", "-cp", System.getProperty("java.class.path"),
            EchoMcpServer.class.getName()).build(), McpJsonDefaults.getMapper()),
        "echo over stdio", Duration.ofSeconds(20));
    stdio.open();
    relay = new RelayAgent(vertx, new RelayConfig(url(), "ck", "echo", "Echo", null, Duration.ofSeconds(1)), stdio);
    relay.start().await();
  }

  @AfterEach
  void stop() {
    relay.stop().await();
    stdio.close();
    server.close().await();
    vertx.close().await();
  }

  private String url() {
    return "http://127.0.0.1:" + server.port();
  }

  private McpSyncClient client(String relayId) {
    return McpClient.sync(HttpClientStreamableHttpTransport.builder(url()).endpoint("/api/mcp/id/" + relayId).build())
        .requestTimeout(Duration.ofSeconds(20)).build();
  }

  private HttpResponse<String> post(String path, String body, String... headers) throws Exception {
    HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(url() + path)).POST(HttpRequest.BodyPublishers.ofString(body))
        .header("Content-Type", "application/json");
    if (headers.length > 0) {
      request.headers(headers);
    }
    return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
  }

  private static String text(McpSchema.CallToolResult result) {
    return ((McpSchema.TextContent) result.content().getFirst()).text();
  }

  @Test
  void anSdkClientUsesAStdioServerThroughTheRelay() throws Exception {
    try (McpSyncClient client = client("echo")) {
      McpSchema.InitializeResult init = client.initialize();
      assertEquals("echo-server", init.serverInfo().name());
      assertEquals(List.of("echo", "fail", "slow"), client.listTools().tools().stream().map(McpSchema.Tool::name).sorted().toList());
      assertEquals("echo: hello", text(client.callTool(new McpSchema.CallToolRequest("echo", Map.of("text", "hello")))));

      McpSchema.CallToolResult failed = client.callTool(new McpSchema.CallToolRequest("fail", Map.of()));
      assertTrue(failed.isError(), "a tool error comes back as the server gave it");
      assertEquals("the tool failed on purpose", text(failed));
      client.ping();

      // Concurrent calls from one SDK client, each on its own thread (the common pool has one thread on two cores).
      try (ExecutorService threads = Executors.newFixedThreadPool(8)) {
        List<Future<String>> calls = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
          String tag = "sdk " + i;
          calls.add(threads.submit(() -> text(client.callTool(new McpSchema.CallToolRequest("slow", Map.of("text", tag, "ms", 300))))));
        }
        for (int i = 0; i < calls.size(); i++) {
          assertEquals("done sdk " + i, calls.get(i).get(30, TimeUnit.SECONDS));
        }
      }
    }
  }

  @Test
  void concurrentCallsWithTheSameIdsEachGetTheirOwnAnswer() throws Exception {
    // Eight clients at once, all using JSON-RPC id 1: the relay must not mix their answers up.
    List<CompletableFuture<JsonNode>> calls = IntStream.range(0, 8).mapToObj(i -> CompletableFuture.supplyAsync(() -> {
      try {
        return JSON.readTree(post("/api/mcp/id/echo", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\","
            + "\"params\":{\"name\":\"slow\",\"arguments\":{\"ms\":300,\"text\":\"call " + i + "\"}}}").body());
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    })).toList();
    for (int i = 0; i < calls.size(); i++) {
      JsonNode answer = calls.get(i).get();
      assertEquals(1, answer.path("id").asInt());
      assertEquals("done call " + i, answer.at("/result/content/0/text").asText(), answer.toString());
    }
  }

  @Test
  void notificationsErrorsAndUnknownRelaysGetJsonRpcAnswers() throws Exception {
    HttpResponse<String> notification = post("/api/mcp/id/echo",
        "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{\"requestId\":\"x\"}}");
    assertEquals(202, notification.statusCode());
    assertEquals("", notification.body());

    HttpResponse<String> unknownMethod = post("/api/mcp/id/echo", "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"no/such\"}");
    assertEquals(200, unknownMethod.statusCode());
    JsonNode error = JSON.readTree(unknownMethod.body());
    assertEquals(7, error.path("id").asInt(), "the client's id comes back");
    assertEquals(-32601, error.path("error").path("code").asInt(), "the server's own error passes through");

    HttpResponse<String> unknownRelay = post("/api/mcp/id/nope", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}");
    assertEquals(404, unknownRelay.statusCode());
    assertEquals("MCP_PROVIDER_UNAVAILABLE", JSON.readTree(unknownRelay.body()).at("/error/data/mcp").asText());

    assertEquals(-32700, JSON.readTree(post("/api/mcp/id/echo", "{nope").body()).at("/error/code").asInt());
    assertEquals(400, post("/api/mcp/id/echo", "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"x\"}").statusCode());
    assertEquals(405, http.send(HttpRequest.newBuilder(URI.create(url() + "/api/mcp/id/echo")).GET().build(),
        HttpResponse.BodyHandlers.ofString()).statusCode());
  }

  @Test
  void aRelayThatGoesAwayMidCallEndsTheCallWithAnError() throws Exception {
    CompletableFuture<HttpResponse<String>> slow = CompletableFuture.supplyAsync(() -> {
      try {
        return post("/api/mcp/id/echo", "{\"jsonrpc\":\"2.0\",\"id\":\"s\",\"method\":\"tools/call\","
            + "\"params\":{\"name\":\"slow\",\"arguments\":{\"ms\":10000}}}");
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    });
    Thread.sleep(500);
    relay.stop().await();
    HttpResponse<String> cut = slow.get();
    assertEquals(502, cut.statusCode());
    JsonNode error = JSON.readTree(cut.body());
    assertEquals("s", error.path("id").asText());
    assertEquals("MCP_PROVIDER_UNAVAILABLE", error.at("/error/data/mcp").asText());
  }

  @Test
  void aRelayWithATokenRefusesClientsWithoutIt() throws Exception {
    RelayAgent guarded = new RelayAgent(vertx, new RelayConfig(url(), "ck", "guarded", null, "s3cret", null), stdio);
    guarded.start().await();
    try {
      String list = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}";
      assertEquals(401, post("/api/mcp/id/guarded", list).statusCode());
      assertEquals(401, post("/api/mcp/id/guarded", list, "Authorization", "Bearer wrong").statusCode());
      HttpResponse<String> allowed = post("/api/mcp/id/guarded", list, "Authorization", "Bearer s3cret");
      assertEquals(200, allowed.statusCode());
      assertEquals(3, JSON.readTree(allowed.body()).at("/result/tools").size());
    } finally {
      guarded.stop().await();
    }
    RelayAgent wrongKey = new RelayAgent(vertx, new RelayConfig(url(), "not-ck", null, null, null, null), stdio);
    assertThrows(RuntimeException.class, () -> wrongKey.start().await());
    wrongKey.stop().await();
  }

  @Test
  void aStreamableHttpServerWorksBehindARelayToo() throws Exception {
    HttpServletStreamableServerTransportProvider transport = HttpServletStreamableServerTransportProvider.builder()
        .mcpEndpoint("/mcp").build();
    McpSyncServer mcp = EchoMcpServer.withTools(McpServer.sync(transport), "http echo: ").build();
    Server jetty = new Server(0);
    ServletContextHandler context = new ServletContextHandler();
    context.addServlet(new ServletHolder(transport), "/*");
    jetty.setHandler(context);
    jetty.start();
    int port = ((NetworkConnector) jetty.getConnectors()[0]).getLocalPort();
    McpSession httpSession = new McpSession(() -> HttpClientStreamableHttpTransport.builder("http://127.0.0.1:" + port)
        .endpoint("/mcp").build(), "echo over HTTP", Duration.ofSeconds(20));
    httpSession.open();
    RelayAgent httpRelay = new RelayAgent(vertx, new RelayConfig(url(), "ck", "web", null, null, null), httpSession);
    httpRelay.start().await();
    try (McpSyncClient client = client("web")) {
      client.initialize();
      assertEquals("http echo: hi", text(client.callTool(new McpSchema.CallToolRequest("echo", Map.of("text", "hi")))));

      // The same server configured by URL on a hub of its own: its tools join that hub's catalog with no relay.
      ServerConfig byUrl = new ServerConfig("127.0.0.1", 0, Files.createTempDirectory("switchboard-mcp"), null, null,
          Duration.ofSeconds(5), 100, Duration.ofSeconds(5), Duration.ofSeconds(5), Duration.ofMillis(500), 1L << 20, 256 * 1024,
          Duration.ofMinutes(1), List.of(), null, null, null, null, null,
          List.of(new ServerConfig.McpServer("direct", "http://127.0.0.1:" + port + "/mcp")), null, null, null, null, null);
      SwitchboardServer hub = SwitchboardServer.start(vertx, byUrl).await();
      try {
        HttpResponse<String> called = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + hub.port() + "/v1/mcp/tools/call"))
            .POST(HttpRequest.BodyPublishers.ofString(
                "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"text\":\"direct\"}}}"))
            .build(), HttpResponse.BodyHandlers.ofString());
        assertEquals("http echo: direct", JSON.readTree(called.body()).at("/result/content/0/text").asText(), called.body());
      } finally {
        hub.close().await();
      }
    } finally {
      httpRelay.stop().await();
      httpSession.close();
      mcp.close();
      jetty.stop();
    }
  }

  private JsonNode tools(String method, String params) throws Exception {
    return JSON.readTree(post("/v1/mcp/tools/" + method.substring(method.indexOf('/') + 1),
        "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"" + method + "\"" + (params == null ? "" : ",\"params\":" + params) + "}").body());
  }

  private List<String> toolNames() throws Exception {
    List<String> names = new ArrayList<>();
    tools("tools/list", null).at("/result/tools").forEach(tool -> names.add(tool.path("name").asText()));
    return names.stream().sorted().toList();
  }

  private HttpResponse<String> admin(String method, String path, String body) throws Exception {
    return http.send(HttpRequest.newBuilder(URI.create(url() + "/v1/admin/mcp/tools" + path))
        .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body)).build(),
        HttpResponse.BodyHandlers.ofString());
  }

  @Test
  void theToolsApiListsCallsDisablesAndFiltersToolsAndKeepsTheSettings() throws Exception {
    assertEquals(List.of("echo", "fail", "slow"), toolNames());
    JsonNode called = tools("tools/call", "{\"name\":\"echo\",\"arguments\":{\"text\":\"hi\"}}");
    assertEquals(5, called.path("id").asInt());
    assertEquals("echo: hi", called.at("/result/content/0/text").asText());

    assertEquals(200, admin("PATCH", "/slow", "{\"enabled\":false}").statusCode());
    assertEquals(List.of("echo", "fail"), toolNames(), "a disabled tool is not listed");
    assertTrue(tools("tools/call", "{\"name\":\"slow\",\"arguments\":{}}").at("/error/message").asText().contains("disabled"));

    assertEquals(400, admin("PUT", "/echo/filters", "{\"disallowed_keywords\":[\"(unclosed\"]}").statusCode());
    HttpResponse<String> filtered = admin("PUT", "/echo/filters", "{\"disallowed_keywords\":[\"secret\\\\w*\"]}");
    assertEquals(200, filtered.statusCode(), filtered.body());
    assertEquals("echo: my [filtered] here",
        tools("tools/call", "{\"name\":\"echo\",\"arguments\":{\"text\":\"my secretword here\"}}").at("/result/content/0/text").asText());
    assertEquals(404, admin("GET", "/nope", null).statusCode());

    server.close().await();
    server = SwitchboardServer.start(vertx, config.withPort(server.port())).await();
    TestWait.until("the relay is back", () -> {
      try {
        return toolNames().contains("echo");
      } catch (Exception e) {
        return false;
      }
    });
    JsonNode slow = JSON.readTree(admin("GET", "/slow", null).body());
    assertEquals(false, slow.path("enabled").asBoolean(), "the setting survived the restart: " + slow);
    assertEquals("echo", JSON.readTree(admin("GET", "", null).body()).at("/data/0/source").asText());
  }

  @Test
  void theStateShowsRelaysWithTheirToolsCallsAndErrors() throws Exception {
    toolNames();
    post("/api/mcp/id/echo", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"text\":\"x\"}}}");
    JsonNode mcp = JSON.readTree(http.send(HttpRequest.newBuilder(URI.create(url() + "/api/state")).build(),
        HttpResponse.BodyHandlers.ofString()).body()).at("/plugins/mcp");
    JsonNode relayState = mcp.at("/relays/0");
    assertEquals("echo", relayState.path("id").asText());
    assertEquals(List.of("echo", "fail", "slow"), List.of(relayState.at("/tools/0").asText(), relayState.at("/tools/1").asText(),
        relayState.at("/tools/2").asText()));
    assertTrue(relayState.path("calls").asInt() >= 2, relayState.toString());
    assertEquals(0, relayState.path("errors").asInt());
    assertEquals(3, mcp.path("tools").size());
  }

  @Test
  void twoServersWithTheSameToolNameGetDistinctIds() throws Exception {
    RelayAgent twin = new RelayAgent(vertx, new RelayConfig(url(), "ck", "twin", null, null, null), stdio);
    twin.start().await();
    try {
      assertEquals(List.of("echo__echo", "echo__fail", "echo__slow", "twin__echo", "twin__fail", "twin__slow"), toolNames());
      assertEquals("echo: via twin",
          tools("tools/call", "{\"name\":\"twin__echo\",\"arguments\":{\"text\":\"via twin\"}}").at("/result/content/0/text").asText());
    } finally {
      twin.stop().await();
    }
  }

  @Test
  void slowAnswersTimeOutAndHugeMessagesAreRefusedWithJsonRpcErrors() throws Exception {
    HttpResponse<String> slow = post("/api/mcp/id/echo", "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/call\","
        + "\"params\":{\"name\":\"slow\",\"arguments\":{\"ms\":8000}}}");
    assertEquals(504, slow.statusCode(), "request_timeout is 5 s here");
    assertEquals("MCP_TIMEOUT", JSON.readTree(slow.body()).at("/error/data/mcp").asText());
    assertEquals(9, JSON.readTree(slow.body()).path("id").asInt());

    String huge = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"text\":\""
        + "x".repeat(1_100_000) + "\"}}}";
    HttpResponse<String> tooLarge = post("/api/mcp/id/echo", huge);
    assertEquals(413, tooLarge.statusCode());
    assertEquals(-32600, JSON.readTree(tooLarge.body()).at("/error/code").asInt());

    String answerOverTheFrameLimit = "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\","
        + "\"arguments\":{\"text\":\"" + "y".repeat(300_000) + "\"}}}";
    HttpResponse<String> refused = post("/api/mcp/id/echo", answerOverTheFrameLimit);
    assertEquals(502, refused.statusCode(), "max_frame_bytes is 256 KiB here");
    assertTrue(JSON.readTree(refused.body()).at("/error/message").asText().contains("more than the"), refused.body());
  }

  @Test
  void aRelayMaySendSpec000sUntypedFirstMessage() throws Exception {
    CompletableFuture<String> answer = new CompletableFuture<>();
    WebSocketClient client = vertx.createWebSocketClient();
    WebSocket ws = client.connect(server.port(), "127.0.0.1", "/api/mcp/connect").await();
    ws.textMessageHandler(answer::complete);
    ws.writeTextMessage("{\"client_name\":\"bare\",\"client_key\":\"ck\"}");
    JsonNode registered = JSON.readTree(answer.get(5, TimeUnit.SECONDS));
    assertEquals("registered", registered.path("type").asText());
    assertTrue(!registered.path("id").asText().isEmpty(), "the server assigned an id: " + registered);
    ws.close().await();
    client.close().await();
  }
}
