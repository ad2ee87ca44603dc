package io.switchboard.server.llm;

import static io.switchboard.server.llm.TestGateway.chatBody;
import static io.switchboard.server.llm.TestGateway.eventually;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.openai.errors.UnauthorizedException;
import io.switchboard.fakeupstream.FakeUpstream;
import io.switchboard.protocol.CloseCodes;
import io.switchboard.protocol.WireCodec;
import io.switchboard.protocol.WorkerMessage;
import io.switchboard.server.ServerConfig;
import io.switchboard.server.SwitchboardServer;
import io.switchboard.worker.WorkerAgent;
import io.switchboard.worker.WorkerRejectedException;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.WebSocket;
import io.vertx.core.http.WebSocketClient;
import io.vertx.core.http.WebSocketConnectOptions;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** Workers joining, being refused, leaving, draining and coming back; and the server draining. */
class WorkerLifecycleTest {

  private static final ObjectMapper JSON = new ObjectMapper();

  private static ServerConfig keyed(String apiKey, String clientKey) {
    return TestGateway.config(apiKey, clientKey, 10, Duration.ofSeconds(5), Duration.ofSeconds(10), List.of());
  }

  /** What a server offers a worker: a WebSocket per event loop, which is one per core. */
  private static Integer lanesOffered() {
    int loops = Runtime.getRuntime().availableProcessors();
    return loops > 1 ? loops : null;
  }

  private static WorkerRejectedException rejection(WorkerAgent agent) {
    CompletionException thrown = assertThrows(CompletionException.class,
        () -> agent.start().toCompletionStage().toCompletableFuture().join());
    return assertInstanceOf(WorkerRejectedException.class, thrown.getCause());
  }

  @Test
  void aServerWithAClientKeyRefusesWorkersWithoutItOrWithAWrongOne() {
    try (TestGateway gateway = TestGateway.start(keyed(null, "right-key"))) {
      FakeUpstream fake = gateway.fake(FakeUpstream.Behavior.defaults());

      WorkerAgent keyless = gateway.unstartedWorker(fake, c -> io.switchboard.worker.WorkerConfig.of(gateway.url(), null)
          .withTimings(Duration.ofMillis(50), Duration.ofMillis(300), Duration.ZERO, Duration.ofSeconds(1)));
      assertEquals(CloseCodes.UNAUTHORIZED, rejection(keyless).closeCode());

      WorkerAgent wrong = gateway.unstartedWorker(fake, c -> io.switchboard.worker.WorkerConfig.of(gateway.url(), "wrong-key")
          .withTimings(Duration.ofMillis(50), Duration.ofMillis(300), Duration.ZERO, Duration.ofSeconds(1)));
      assertEquals(CloseCodes.UNAUTHORIZED, rejection(wrong).closeCode());
      assertTrue(wrong.terminated().failed(), "a rejected worker gives up instead of reconnecting");

      gateway.worker(fake);
      assertEquals(200, gateway.post("/v1/chat/completions", chatBody("fake-model", false)).statusCode());
    }
  }

  @Test
  void aWorkerHoldsALaneOnEachLoopOfTheServerAndABrokenLaneLosesOnlyItsOwnRequests() throws Exception {
    Integer loops = lanesOffered();
    assumeTrue(loops != null, "a server on one event loop offers no lanes");
    HttpClient clients = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    try (TestGateway gateway = TestGateway.start(); NetworkLink link = new NetworkLink(gateway)) {
      FakeUpstream slow = gateway.fake(FakeUpstream.Behavior.defaults().withTokens(40, 50));
      gateway.worker(slow, c -> link.dialedBy(c.withCapacity(16, 0)));
      LlmRouter router = gateway.server.llm().router();
      WorkerConnection first = (WorkerConnection) router.workers().getFirst().backend();
      eventually("the worker opened a lane for each other loop", () -> first.connections().size() == loops);
      assertEquals(loops, JSON.readTree(gateway.get("/api/state").body()).at("/plugins/llm/workers/0/connections").asInt());

      // Each request on its own connection: the server spreads them over its loops, and so over the lanes.
      List<CompletableFuture<HttpResponse<String>>> streams = IntStream.range(0, 4 * loops)
          .mapToObj(i -> clients.sendAsync(HttpRequest.newBuilder(URI.create(gateway.url() + "/v1/chat/completions"))
              .POST(HttpRequest.BodyPublishers.ofString(chatBody("fake-model", true))).build(), HttpResponse.BodyHandlers.ofString()))
          .toList();
      eventually("every stream is in flight, and every connection of the worker carries some",
          () -> first.connections().stream().mapToInt(WorkerConnection::inFlight).sum() == streams.size()
              && first.connections().stream().allMatch(connection -> connection.inFlight() > 0));
      int lost = first.connections().get(1).inFlight();
      link.cut(1);

      long whole = streams.stream().map(stream -> stream.handle((response, error) -> error == null
          && response.statusCode() == 200 && response.body().contains("data: [DONE]")).join()).filter(ok -> ok).count();
      assertEquals(streams.size() - lost, whole, "every stream but the broken lane's " + lost + " ends whole");
      assertEquals(List.of(first), router.workers().stream().map(Worker::backend).toList(), "the worker is still there");
      eventually("the worker dialed the broken lane again", () -> first.connections().size() == loops);
      assertEquals(200, gateway.post("/v1/chat/completions", chatBody("fake-model", false)).statusCode());

      link.cut(0);
      eventually("the worker came back, with its lanes", () -> router.workers().size() == 1
          && router.workers().getFirst().backend() instanceof WorkerConnection again && again != first
          && again.connections().size() == loops);
      assertEquals(200, gateway.post("/v1/chat/completions", chatBody("fake-model", false)).statusCode());
    }
  }

  @Test
  void aServerWithoutAClientKeyRefusesAWorkerThatSendsOne() {
    try (TestGateway gateway = TestGateway.start()) {
      FakeUpstream fake = gateway.fake(FakeUpstream.Behavior.defaults());
      WorkerAgent keyed = gateway.unstartedWorker(fake, c -> io.switchboard.worker.WorkerConfig.of(gateway.url(), "some-key")
          .withTimings(Duration.ofMillis(50), Duration.ofMillis(300), Duration.ZERO, Duration.ofSeconds(1)));

      WorkerRejectedException rejected = rejection(keyed);

      assertEquals(CloseCodes.UNEXPECTED_CLIENT_KEY, rejected.closeCode());
      assertTrue(rejected.getMessage().contains("no client key"), rejected.getMessage());
    }
  }

  @Test
  void theClientKeyMayAlsoComeAsABearerHeaderOnTheUpgrade() {
    try (TestGateway gateway = TestGateway.start(keyed(null, "right-key"))) {
      CompletableFuture<String> answer = new CompletableFuture<>();
      WebSocketClient client = gateway.vertx.createWebSocketClient();
      WebSocket ws = client.connect(new WebSocketConnectOptions()
              .setAbsoluteURI("ws://127.0.0.1:" + gateway.server.port() + "/api/llm/connect")
              .addHeader("Authorization", "Bearer right-key"))
          .onSuccess(socket -> {
            socket.textMessageHandler(answer::complete);
            socket.writeTextMessage(WireCodec.encode(new WorkerMessage.Register(null, "header-worker", null, List.of("h"), 1, 0, null)));
          })
          .await();

      WorkerMessage registered = WireCodec.decode(answer.orTimeout(5, TimeUnit.SECONDS).join());

      assertEquals(new WorkerMessage.Registered("header-worker", 500, lanesOffered()), registered);
      ws.close().await();
      client.close().await();
    }
  }

  @Test
  void theApiKeyGuardsTheOpenAiEndpoints() {
    try (TestGateway gateway = TestGateway.start(keyed("sk-test", null))) {
      gateway.worker(gateway.fake(FakeUpstream.Behavior.defaults()));

      assertEquals(401, gateway.post("/v1/chat/completions", chatBody("fake-model", false)).statusCode());
      assertEquals(401, gateway.get("/api/llm/v1/models", "Authorization", "Bearer wrong").statusCode());
      assertThrows(UnauthorizedException.class, () -> gateway.openai("wrong").models().list());

      assertEquals(List.of("fake-model"), gateway.openai("sk-test").models().list().data().stream().map(m -> m.id()).toList());
      assertEquals(200, gateway.get("/healthz").statusCode(), "health is public");
    }
  }

  @Test
  void aWorkerChangesItsModelsWithoutReconnecting() {
    try (TestGateway gateway = TestGateway.start()) {
      WorkerAgent worker = gateway.worker(gateway.fake(FakeUpstream.Behavior.defaults().withModels("a")));

      worker.updateModels(List.of("a", "b"));

      eventually("model b is listed", () -> gateway.server.llm().router().model("b").isPresent());
      assertEquals(1, gateway.server.llm().router().workers().size());
    }
  }

  @Test
  void aWorkerPicksUpNewUpstreamModelsByPolling() {
    try (TestGateway gateway = TestGateway.start()) {
      FakeUpstream fake = gateway.fake(FakeUpstream.Behavior.defaults().withModels("a"));
      gateway.worker(fake);

      fake.behave(fake.behavior().withModels("a", "c"));

      eventually("model c is listed", () -> gateway.server.llm().router().model("c").isPresent());
    }
  }

  @Test
  void aSilentPeerIsDroppedWithinThreeHeartbeats() {
    try (TestGateway gateway = TestGateway.start()) {
      // Held for the whole test: Vert.x shuts a client down when it is garbage collected, even mid-handshake.
      WebSocketClient client = gateway.vertx.createWebSocketClient();
      client.connect(gateway.server.port(), "127.0.0.1", "/api/llm/connect")
          .onSuccess(ws -> ws.writeTextMessage(WireCodec.encode(new WorkerMessage.Register(null, "mute", null, List.of("q"), 1, 0, null))))
          .await();
      eventually("the mute worker registered", () -> gateway.server.llm().router().worker("mute").isPresent());

      eventually("the mute worker was dropped", () -> gateway.server.llm().router().worker("mute").isEmpty());
      assertEquals(404, gateway.post("/v1/chat/completions", chatBody("q", false)).statusCode());
      client.close().await();
    }
  }

  @Test
  void aWorkerReconnectsAfterTheServerRestartsAndKeepsItsId() {
    ServerConfig config = keyed(null, null);
    TestGateway gateway = TestGateway.start(config);
    Vertx second = Vertx.vertx();
    try {
      WorkerAgent worker = gateway.worker(gateway.fake(FakeUpstream.Behavior.defaults()));
      String id = worker.workerId();
      int port = gateway.server.port();
      gateway.server.close().await();

      ServerConfig samePort = config.withPort(port);
      SwitchboardServer restarted = SwitchboardServer.start(second, samePort).await();

      eventually("the worker is back", () -> restarted.llm().router().worker(id).isPresent());
      assertEquals(List.of("fake-model"), restarted.llm().router().worker(id).orElseThrow().models());
    } finally {
      gateway.close();
      second.close().await();
    }
  }

  @Test
  void aNewConnectionWithTheSameIdReplacesTheOldOne() {
    try (TestGateway gateway = TestGateway.start()) {
      FakeUpstream fake = gateway.fake(FakeUpstream.Behavior.defaults());
      WorkerAgent first = gateway.worker(fake, c -> c.withIdentity("same", "first"));
      gateway.worker(fake, c -> c.withIdentity("same", "second"));

      Future<Void> firstLeft = first.terminated();
      eventually("the first connection was told it was replaced", firstLeft::isComplete);
      assertInstanceOf(WorkerRejectedException.class, firstLeft.cause());
      assertEquals("second", gateway.server.llm().router().worker("same").orElseThrow().name());
      assertEquals(200, gateway.post("/v1/chat/completions", chatBody("fake-model", false)).statusCode());
    }
  }

  @Test
  void aDrainingWorkerFinishesItsRequestsThenLeaves() throws Exception {
    try (TestGateway gateway = TestGateway.start()) {
      FakeUpstream fake = gateway.fake(FakeUpstream.Behavior.defaults().withModels("m").withFirstByteDelay(500));
      WorkerAgent worker = gateway.worker(fake, c -> c.withIdentity("drainee", null));
      CompletableFuture<HttpResponse<String>> inFlight = gateway.postAsync("/v1/chat/completions", chatBody("m", false));
      eventually("the request runs", () -> fake.inFlight() == 1);

      HttpResponse<String> drain = gateway.post("/api/llm/workers/drainee/drain", "");
      assertEquals(202, drain.statusCode());
      assertEquals("draining", JSON.readTree(drain.body()).get("status").asText());

      HttpResponse<String> refused = gateway.post("/v1/chat/completions", chatBody("m", false));
      assertEquals(503, refused.statusCode(), "no new request goes to a draining worker");
      assertEquals(200, inFlight.get().statusCode(), "the request in flight finishes");
      worker.terminated().await();
      eventually("the worker left", () -> gateway.server.llm().router().worker("drainee").isEmpty());
      assertEquals(404, gateway.post("/api/llm/workers/nobody/drain", "").statusCode());
    }
  }

  @Test
  void aDrainingServerRefusesNewWorkButFinishesWhatItHas() throws Exception {
    try (TestGateway gateway = TestGateway.start()) {
      FakeUpstream fake = gateway.fake(FakeUpstream.Behavior.defaults().withModels("m").withTokens(10, 60));
      gateway.worker(fake);
      CompletableFuture<HttpResponse<String>> inFlight = gateway.postAsync("/v1/chat/completions", chatBody("m", true));
      eventually("the request runs", () -> fake.inFlight() == 1);

      Future<Void> drained = gateway.server.drain();

      assertEquals("draining", gateway.server.status());
      HttpResponse<String> refused = gateway.post("/v1/chat/completions", chatBody("m", false));
      assertEquals(503, refused.statusCode());
      assertEquals("draining", JSON.readTree(refused.body()).at("/error/code").asText());
      assertEquals(503, gateway.get("/healthz").statusCode());
      assertEquals("{\"status\":\"draining\"}", gateway.get("/healthz").body());
      HttpResponse<String> finished = inFlight.get();
      assertEquals(200, finished.statusCode());
      assertTrue(finished.body().endsWith("data: [DONE]\n\n"), finished.body());
      drained.await();
    }
  }
}
