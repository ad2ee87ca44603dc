package io.switchboard.server.llm;

import static io.switchboard.server.llm.TestGateway.chatBody;
import static io.switchboard.server.llm.TestGateway.eventually;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.switchboard.fakeupstream.FakeUpstream;
import io.switchboard.server.ServerConfig;
import io.switchboard.worker.WorkerAgent;
import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/** What a client sees when workers are slow, full, killed, or when the client itself goes away. */
class FailuresTest {

  private static final ObjectMapper JSON = new ObjectMapper();

  private static HttpRequest streamRequest(TestGateway gateway, String model) {
    return HttpRequest.newBuilder(URI.create(gateway.url() + "/v1/chat/completions"))
        .POST(HttpRequest.BodyPublishers.ofString(chatBody(model, true))).build();
  }

  @Test
  void clientDisconnectAbortsTheUpstreamRequestAndFreesTheSlot() throws Exception {
    try (TestGateway gateway = TestGateway.start()) {
      FakeUpstream fake = gateway.fake(FakeUpstream.Behavior.defaults().withModels("slow").withTokens(200, 50));
      gateway.worker(fake, c -> c.withCapacity(1, 0));

      HttpResponse<InputStream> response = gateway.http().send(streamRequest(gateway, "slow"), HttpResponse.BodyHandlers.ofInputStream());
      BufferedReader reader = new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8));
      assertTrue(reader.readLine().startsWith("data: "));
      eventually("the upstream is answering", () -> fake.inFlight() == 1);
      response.body().close();

      eventually("the upstream saw its request aborted", () -> fake.aborted() == 1);
      assertEquals(0, fake.inFlight());
      fake.behave(fake.behavior().withTokens(3, 0));
      assertEquals(200, gateway.post("/v1/chat/completions", chatBody("slow", false)).statusCode(),
          "the only slot of the worker is free again");
    }
  }

  @Test
  void aWorkerKilledBeforeItAnswersIsReplacedByAnother() throws Exception {
    try (TestGateway gateway = TestGateway.start()) {
      FakeUpstream stuck = gateway.fake(FakeUpstream.Behavior.defaults().withModels("m").withFirstByteDelay(60_000));
      FakeUpstream healthy = gateway.fake(FakeUpstream.Behavior.defaults().withModels("m").withTokens(4, 0));
      WorkerAgent doomed = gateway.worker(stuck, c -> c.withIdentity("doomed", null));

      CompletableFuture<HttpResponse<String>> pending = gateway.postAsync("/v1/chat/completions", chatBody("m", false));
      eventually("the doomed worker has the request", () -> stuck.inFlight() == 1);
      gateway.worker(healthy, c -> c.withIdentity("healthy", null));
      gateway.kill(doomed);

      HttpResponse<String> response = pending.get();
      assertEquals(200, response.statusCode(), response.body());
      assertEquals("healthy", response.headers().firstValue("X-Switchboard-Worker").orElseThrow());
      assertEquals("tok0 tok1 tok2 tok3", JSON.readTree(response.body()).at("/choices/0/message/content").asText());
    }
  }

  @Test
  void aWorkerKilledMidStreamEndsTheStreamWithAnErrorEvent() throws Exception {
    try (TestGateway gateway = TestGateway.start()) {
      FakeUpstream fake = gateway.fake(FakeUpstream.Behavior.defaults().withModels("m").withTokens(200, 50));
      WorkerAgent worker = gateway.worker(fake);

      HttpResponse<InputStream> response = gateway.http().send(streamRequest(gateway, "m"), HttpResponse.BodyHandlers.ofInputStream());
      BufferedReader reader = new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8));
      assertTrue(reader.readLine().startsWith("data: "));
      gateway.kill(worker);

      List<String> events = new ArrayList<>();
      for (String line = reader.readLine(); line != null; line = reader.readLine()) {
        if (line.startsWith("data: ")) {
          events.add(line.substring(6));
        }
      }
      assertEquals(200, response.statusCode());
      String last = events.get(events.size() - 1);
      // Closing the worker's Vert.x may cut its upstream connection a moment before its socket to us;
      // either way the client must get an error event, never a silently truncated stream.
      assertTrue(Set.of("worker_lost", "upstream_error").contains(JSON.readTree(last).at("/error/code").asText()), last);
      assertTrue(events.size() < 200, "the stream ended early");
    }
  }

  @Test
  void queuesWhenWorkersAreFullAndRefusesWhenTheQueueIsFull() throws Exception {
    ServerConfig config = TestGateway.config(null, null, 1, Duration.ofSeconds(10), Duration.ofSeconds(10), List.of());
    try (TestGateway gateway = TestGateway.start(config)) {
      FakeUpstream fake = gateway.fake(FakeUpstream.Behavior.defaults().withModels("m").withFirstByteDelay(600));
      gateway.worker(fake, c -> c.withCapacity(1, 0));
      CompletableFuture<HttpResponse<String>> running = gateway.postAsync("/v1/chat/completions", chatBody("m", false));
      eventually("the first request runs", () -> fake.inFlight() == 1);
      CompletableFuture<HttpResponse<String>> queued = gateway.postAsync("/v1/chat/completions", chatBody("m", false));
      eventually("the second request waits", () -> gateway.server.llm().router().queued() == 1);
      HttpResponse<String> refused = gateway.post("/v1/chat/completions", chatBody("m", false));

      assertEquals(503, refused.statusCode());
      assertEquals("worker_busy", JSON.readTree(refused.body()).at("/error/code").asText());
      assertEquals("1", refused.headers().firstValue("Retry-After").orElseThrow());
      assertEquals(200, running.get().statusCode());
      assertEquals(200, queued.get().statusCode());
    }
  }

  @Test
  void aBurstBiggerThanTheWorkersIsAllAnsweredAndGivesEverySlotBack() throws Exception {
    ServerConfig config = TestGateway.config(null, null, 100, Duration.ofSeconds(10), Duration.ofSeconds(10), List.of());
    try (TestGateway gateway = TestGateway.start(config)) {
      FakeUpstream fake = gateway.fake(FakeUpstream.Behavior.defaults().withModels("m").withFirstByteDelay(20));
      gateway.worker(fake, c -> c.withCapacity(3, 0));
      List<CompletableFuture<HttpResponse<String>>> burst = new ArrayList<>();
      for (int i = 0; i < 40; i++) {
        burst.add(gateway.postAsync("/v1/chat/completions", chatBody("m", false)));
      }
      for (CompletableFuture<HttpResponse<String>> answer : burst) {
        assertEquals(200, answer.get().statusCode());
      }
      LlmRouter router = gateway.server.llm().router();
      Worker worker = router.workers().getFirst();
      eventually("every slot is given back", () -> router.inFlight(worker) == 0);
      assertEquals(0, router.queued());
      assertEquals(0, fake.inFlight(), "nothing is left running at the upstream");
    }
  }

  @Test
  void aRequestThatWaitsTooLongInTheQueueFailsWith503() throws Exception {
    ServerConfig config = TestGateway.config(null, null, 10, Duration.ofMillis(200), Duration.ofSeconds(10), List.of());
    try (TestGateway gateway = TestGateway.start(config)) {
      FakeUpstream fake = gateway.fake(FakeUpstream.Behavior.defaults().withModels("m").withFirstByteDelay(1500));
      gateway.worker(fake, c -> c.withCapacity(1, 0));

      CompletableFuture<HttpResponse<String>> running = gateway.postAsync("/v1/chat/completions", chatBody("m", false));
      eventually("the first request runs", () -> fake.inFlight() == 1);
      HttpResponse<String> waited = gateway.post("/v1/chat/completions", chatBody("m", false));

      assertEquals(503, waited.statusCode());
      assertEquals("queue_timeout", JSON.readTree(waited.body()).at("/error/code").asText());
      assertEquals(200, running.get().statusCode());
    }
  }

  @Test
  void aSilentWorkerTimesOutWith504AndIsCancelled() throws Exception {
    ServerConfig config = TestGateway.config(null, null, 10, Duration.ofSeconds(5), Duration.ofMillis(400), List.of());
    try (TestGateway gateway = TestGateway.start(config)) {
      FakeUpstream fake = gateway.fake(FakeUpstream.Behavior.defaults().withModels("m").withFirstByteDelay(60_000));
      gateway.worker(fake);

      HttpResponse<String> response = gateway.post("/v1/chat/completions", chatBody("m", false));

      assertEquals(504, response.statusCode());
      assertEquals("timeout", JSON.readTree(response.body()).at("/error/code").asText());
      eventually("the upstream request was aborted", () -> fake.aborted() == 1);
    }
  }

  @Test
  void upstreamErrorsPassThroughWithTheirStatusAndBody() throws Exception {
    try (TestGateway gateway = TestGateway.start()) {
      FakeUpstream fake = gateway.fake(FakeUpstream.Behavior.defaults().withModels("m").withFailStatus(500));
      gateway.worker(fake);

      HttpResponse<String> response = gateway.post("/v1/chat/completions", chatBody("m", false));

      assertEquals(500, response.statusCode());
      assertEquals("fake upstream failure", JSON.readTree(response.body()).at("/error/message").asText());
    }
  }

  @Test
  void anUnreachableUpstreamIsA502WhenNoOtherWorkerCanTakeIt() throws Exception {
    try (TestGateway gateway = TestGateway.start()) {
      FakeUpstream fake = gateway.fake(FakeUpstream.Behavior.defaults().withModels("m"));
      gateway.worker(fake);
      fake.stop().await();

      HttpResponse<String> response = gateway.post("/v1/chat/completions", chatBody("m", false));

      assertEquals(502, response.statusCode());
      assertEquals("upstream_unreachable", JSON.readTree(response.body()).at("/error/code").asText());
    }
  }
}
