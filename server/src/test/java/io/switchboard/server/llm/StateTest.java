package io.switchboard.server.llm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.switchboard.fakeupstream.FakeUpstream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** The state API: the envelope, its live stream, and its keys. */
class StateTest {

  private static final ObjectMapper JSON = new ObjectMapper();

  @Test
  void theStateStreamShowsAWorkerThatConnectsWhileWatching() throws Exception {
    try (TestGateway gateway = TestGateway.start()) {
      JsonNode envelope = JSON.readTree(gateway.get("/api/state").body());
      assertEquals("not_ready", envelope.at("/plugins/llm/status").asText());
      assertEquals(0, envelope.at("/plugins/llm/workers").size());
      assertTrue(envelope.at("/plugins/mcp/relays").isArray(), envelope.toString());

      HttpResponse<Stream<String>> stream = gateway.http().send(HttpRequest.newBuilder(URI.create(gateway.url() + "/api/state/stream"))
          .build(), HttpResponse.BodyHandlers.ofLines());
      assertEquals(200, stream.statusCode());
      assertEquals("text/event-stream", stream.headers().firstValue("Content-Type").orElse(""));
      Iterator<String> lines = stream.body().iterator();
      JsonNode first = nextState(lines);
      assertEquals("not_ready", first.at("/plugins/llm/status").asText(), "a watcher gets the state at once");

      gateway.worker(gateway.fake(FakeUpstream.Behavior.defaults().withModels("m")), c -> c.withIdentity("late-gpu", null));
      CompletableFuture<JsonNode> joined = CompletableFuture.supplyAsync(() -> {
        while (true) {
          JsonNode next = nextState(lines);
          if (next.at("/plugins/llm/status").asText().equals("ready")) {
            return next;
          }
        }
      });
      JsonNode ready = joined.get(10, TimeUnit.SECONDS);
      JsonNode worker = ready.at("/plugins/llm/workers/0");
      assertEquals("late-gpu", worker.path("id").asText());
      assertEquals(List.of("m"), List.of(worker.path("models").get(0).asText()));
      assertEquals("m", ready.at("/plugins/llm/models/0/id").asText());
      stream.body().close();

      assertEquals(200, gateway.post("/v1/chat/completions", TestGateway.chatBody("m", false)).statusCode());
      assertEquals(404, gateway.post("/v1/chat/completions", TestGateway.chatBody("unknown", false)).statusCode());
      JsonNode after = JSON.readTree(gateway.get("/api/state").body()).at("/plugins/llm");
      assertEquals(1, after.at("/workers/0/requests").asInt());
      assertEquals(0, after.at("/workers/0/errors").asInt());
      assertTrue(after.at("/workers/0/last_heard_at").asText().startsWith("20"), after.toString());
      assertEquals(2, after.at("/aggregates/requests").asInt());
      assertEquals(1, after.at("/aggregates/succeeded").asInt());

      assertEquals(404, gateway.get("/api/state/view/nope.html").statusCode());
    }
  }

  /**
   * Each watcher's connection lives on one of the server's event loops, and HTTP/1.1 answers are
   * written only on their own loop: every watcher, whichever loop it is on, sees the change.
   */
  @Test
  void everyHttp11WatcherSeesTheChangeWhicheverLoopItIsOn() throws Exception {
    try (TestGateway gateway = TestGateway.start()) {
      HttpClient http11 = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
      List<Iterator<String>> watchers = new ArrayList<>();
      List<HttpResponse<Stream<String>>> streams = new ArrayList<>();
      for (int i = 0; i < 4; i++) {
        HttpResponse<Stream<String>> stream = http11.send(HttpRequest.newBuilder(URI.create(gateway.url() + "/api/state/stream"))
            .build(), HttpResponse.BodyHandlers.ofLines());
        assertEquals(HttpClient.Version.HTTP_1_1, stream.version());
        streams.add(stream);
        Iterator<String> lines = stream.body().iterator();
        assertEquals("not_ready", nextState(lines).at("/plugins/llm/status").asText());
        watchers.add(lines);
      }

      gateway.worker(gateway.fake(FakeUpstream.Behavior.defaults().withModels("m")), c -> c.withIdentity("gpu", null));
      for (Iterator<String> lines : watchers) {
        CompletableFuture<JsonNode> ready = CompletableFuture.supplyAsync(() -> {
          while (true) {
            JsonNode next = nextState(lines);
            if (next.at("/plugins/llm/status").asText().equals("ready")) {
              return next;
            }
          }
        });
        assertEquals("gpu", ready.get(10, TimeUnit.SECONDS).at("/plugins/llm/workers/0/id").asText());
      }
      streams.forEach(stream -> stream.body().close());
    }
  }

  @Test
  void theStateApiTakesTheApiKey() {
    try (TestGateway gateway = TestGateway.start(TestGateway.config("sk-state", null, 10, Duration.ofSeconds(5),
        Duration.ofSeconds(10), List.of()))) {
      assertEquals(401, gateway.get("/api/state").statusCode());
      assertEquals(401, gateway.get("/api/state/stream").statusCode());
      assertEquals(200, gateway.get("/api/state", "Authorization", "Bearer sk-state").statusCode());
    }
  }

  /** The data of the next {@code state} event. */
  private static JsonNode nextState(Iterator<String> lines) {
    while (lines.hasNext()) {
      String line = lines.next();
      if (line.startsWith("data: ")) {
        try {
          return JSON.readTree(line.substring(6));
        } catch (Exception e) {
          throw new IllegalStateException(e);
        }
      }
    }
    throw new IllegalStateException("the stream ended");
  }
}
