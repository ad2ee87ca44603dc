package io.switchboard.relay;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelcontextprotocol.client.transport.ServerParameters;
import io.modelcontextprotocol.client.transport.StdioClientTransport;
import io.modelcontextprotocol.json.McpJsonDefaults;
import io.switchboard.protocol.CloseCodes;
import io.switchboard.protocol.Json;
import io.switchboard.protocol.RelayMessage;
import io.switchboard.protocol.WireCodec;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.ServerWebSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.BiConsumer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The relay between a stand-in for the Switchboard server (a WebSocket that speaks the relay
 * protocol) and a real MCP server (the SDK's, over stdio, in a child process).
 */
class RelayAgentTest {

  private static McpSession session;
  private final Vertx vertx = Vertx.vertx();
  private HttpServer hub;
  private RelayAgent relay;
  /** The relay's messages as the stand-in received them. */
  private final BlockingQueue<RelayMessage> received = new LinkedBlockingQueue<>();
  /** The stand-in's end of the relay's latest connection. */
  private volatile ServerWebSocket latest;

  @BeforeAll
  static void openSession() {
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    session = new McpSession(() -> new StdioClientTransport(ServerParameters.builder(java)
        .args("-cp", System.getProperty("java.class.path"), EchoMcpServer.class.getName()).build(), McpJsonDefaults.getMapper()),
        "echo", Duration.ofSeconds(30));
    session.open();
  }

  @AfterAll
  static void closeSession() {
    session.close();
  }

  @AfterEach
  void close() {
    if (relay != null) {
      relay.stop().await();
    }
    vertx.close().await();
  }

  /** Starts the stand-in: it answers each register with {@code registered}, or as {@code onRegister} says. */
  private int hub(BiConsumer<ServerWebSocket, RelayMessage.Register> onRegister) {
    hub = vertx.createHttpServer().webSocketHandler(ws -> {
      ws.textMessageHandler(text -> {
        RelayMessage message = WireCodec.decodeRelay(text);
        received.add(message);
        if (message instanceof RelayMessage.Register register) {
          latest = ws;
          onRegister.accept(ws, register);
        }
      });
    }).listen(0, "127.0.0.1").await();
    return hub.actualPort();
  }

  private static void accept(ServerWebSocket ws, RelayMessage.Register register, int maxMessageBytes) {
    ws.writeTextMessage(WireCodec.encode(new RelayMessage.Registered(
        register.id() == null ? "relay-1" : register.id(), 1_000, maxMessageBytes)));
  }

  private RelayAgent relay(int port, String authToken) {
    relay = new RelayAgent(vertx, new RelayConfig("http://127.0.0.1:" + port, "ck", "tools", "Tools", authToken,
        Duration.ofSeconds(1)), session);
    return relay;
  }

  private <T extends RelayMessage> T next(Class<T> kind) throws InterruptedException {
    while (true) {
      RelayMessage message = received.poll(20, TimeUnit.SECONDS);
      if (message == null) {
        throw new AssertionError("no " + kind.getSimpleName() + " from the relay");
      }
      if (kind.isInstance(message)) {
        return kind.cast(message);
      }
    }
  }

  private RelayMessage.RpcResult rpc(long req, String json, String auth) throws Exception {
    latest.writeTextMessage(WireCodec.encode(new RelayMessage.Rpc(req, Json.MAPPER.readTree(json), auth)));
    RelayMessage.RpcResult result = next(RelayMessage.RpcResult.class);
    assertEquals(req, result.req());
    return result;
  }

  private static final String CALL_ECHO = """
      {"jsonrpc":"2.0","id":"c-7","method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}""";

  @Test
  void itRegistersAndCarriesJsonRpcToTheMcpServerAndBack() throws Exception {
    int port = hub((ws, register) -> accept(ws, register, 1 << 20));
    relay(port, null).start().await(20, TimeUnit.SECONDS);

    RelayMessage.Register register = next(RelayMessage.Register.class);
    assertEquals("tools", register.id());
    assertEquals("ck", register.clientKey());
    assertEquals("Tools", register.clientName());

    RelayMessage.RpcResult call = rpc(1, CALL_ECHO, null);
    assertEquals(200, call.status());
    assertEquals("c-7", call.payload().path("id").asText(), "the client's own id comes back");
    assertEquals("echo: hi", call.payload().path("result").path("content").path(0).path("text").asText());

    RelayMessage.RpcResult initialize = rpc(2, """
        {"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},
         "clientInfo":{"name":"c","version":"1"}}}""", null);
    assertEquals("echo", initialize.payload().path("result").path("serverInfo").path("name").asText(),
        "a client's initialize is answered from the relay's one session");

    RelayMessage.RpcResult notification = rpc(3, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", null);
    assertEquals(202, notification.status());
  }

  @Test
  void withATokenOnlyClientsThatSendItAreServed() throws Exception {
    int port = hub((ws, register) -> accept(ws, register, 1 << 20));
    relay(port, "secret-token").start().await(20, TimeUnit.SECONDS);

    RelayMessage.RpcResult without = rpc(1, CALL_ECHO, null);
    assertEquals(401, without.status());
    assertEquals(RelayAgent.UNAUTHORIZED, without.payload().path("error").path("code").asInt());
    assertEquals(401, rpc(2, CALL_ECHO, "Bearer wrong-token").status());
    assertEquals(200, rpc(3, CALL_ECHO, "Bearer secret-token").status());
  }

  @Test
  void anAnswerLargerThanTheServerTakesBecomesAJsonRpcError() throws Exception {
    int port = hub((ws, register) -> accept(ws, register, 120));
    relay(port, null).start().await(20, TimeUnit.SECONDS);

    RelayMessage.RpcResult result = rpc(1, CALL_ECHO, null);
    assertEquals(502, result.status());
    assertEquals("c-7", result.payload().path("id").asText());
    assertTrue(result.payload().path("error").path("message").asText().contains("more than the 120"), result.payload().toString());
  }

  @Test
  void aDroppedConnectionIsDialedAgainUnderTheSameId() throws Exception {
    int[] registers = {0};
    int port = hub((ws, register) -> {
      if (++registers[0] == 1) {
        ws.close(CloseCodes.NORMAL, "restarting");
      } else {
        accept(ws, register, 1 << 20);
      }
    });
    relay(port, null).start().await(20, TimeUnit.SECONDS);

    List<String> ids = List.of(next(RelayMessage.Register.class).id(), next(RelayMessage.Register.class).id());
    assertEquals(List.of("tools", "tools"), ids);
    assertEquals(200, rpc(1, CALL_ECHO, null).status());
  }

  @Test
  void aServerThatRefusesTheRelayForGoodEndsItsStart() throws Exception {
    int port = hub((ws, register) -> ws.close(CloseCodes.UNAUTHORIZED, "invalid client key"));

    Exception refused = assertThrows(Exception.class, () -> relay(port, null).start().await(20, TimeUnit.SECONDS));
    assertTrue(refused.getMessage().contains("invalid client key"), refused.getMessage());
    Thread.sleep(1_500);
    assertEquals(1, received.stream().filter(RelayMessage.Register.class::isInstance).count(), "not dialed again");
  }

}
