package io.switchboard.server.llm;

import static io.switchboard.server.llm.TestGateway.chatBody;
import static io.switchboard.server.llm.TestGateway.eventually;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import io.netty.util.ResourceLeakDetector;
import io.switchboard.fakeupstream.FakeUpstream;
import io.switchboard.server.ServerConfig;
import io.vertx.core.Vertx;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/**
 * An upstream's answer reaches an HTTP/1.1 client in the upstream connection's own pooled buffers
 * ({@code ResponseSink.lentChunk}). Each must go back to the pool, whether it was written whole,
 * streamed event by event, or dropped because its client left. Netty's leak detector, told to track
 * every buffer, reports any that the collector found unreleased.
 */
class LentAnswerBuffersTest {

  /** A second of tokens, so that the client leaves in the middle. */
  private static final String LONG_STREAM =
      "{\"model\":\"m\",\"stream\":true,\"max_tokens\":500,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

  private final ListAppender<ILoggingEvent> reports = new ListAppender<>();
  private final Logger detector = (Logger) LoggerFactory.getLogger(ResourceLeakDetector.class);
  private ResourceLeakDetector.Level level;

  @BeforeEach
  void trackEveryBuffer() {
    // Vert.x turns the detector off when its first instance is made, unless a system property says otherwise.
    Vertx.vertx().close().await();
    level = ResourceLeakDetector.getLevel();
    ResourceLeakDetector.setLevel(ResourceLeakDetector.Level.PARANOID);
    reports.start();
    detector.addAppender(reports);
  }

  @AfterEach
  void restore() {
    detector.detachAppender(reports);
    ResourceLeakDetector.setLevel(level);
  }

  @Test
  void everyLentBufferGoesBackToThePool() throws Exception {
    Vertx upstreamVertx = Vertx.vertx();
    FakeUpstream fake = new FakeUpstream(upstreamVertx, FakeUpstream.Behavior.defaults().withModels("m").withTokens(8, 2))
        .start(0).await();
    ServerConfig config = TestGateway.config(null, null, 100, Duration.ofSeconds(5), Duration.ofSeconds(10),
        List.of(ServerConfig.Upstream.of(fake.baseUrl())));
    HttpClient http1 = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    try (TestGateway gateway = TestGateway.start(config)) {
      URI completions = URI.create(gateway.url() + "/v1/chat/completions");
      for (int i = 0; i < 20; i++) {
        assertTrue(post(http1, completions, chatBody("m", false)).body().contains("tok7"), "a whole answer");
        assertTrue(post(http1, completions, chatBody("m", true)).body().endsWith("data: [DONE]\n\n"), "a whole stream");
      }
      for (int i = 0; i < 5; i++) {
        HttpResponse<InputStream> leaving = http1.send(request(completions, LONG_STREAM), HttpResponse.BodyHandlers.ofInputStream());
        try (InputStream events = leaving.body()) {
          assertTrue(events.read(new byte[64]) > 0, "the stream has begun");
        }
      }
      eventually("the upstream saw every client that left", () -> fake.aborted() == 5);

      // The detector looks for collected, unreleased buffers each time it tracks a new one.
      for (int round = 0; round < 3; round++) {
        System.gc();
        Thread.sleep(200);
        assertEquals(200, post(http1, completions, chatBody("m", false)).statusCode());
      }
    } finally {
      upstreamVertx.close().await();
    }
    assertEquals(List.of(), reports.list.stream().map(ILoggingEvent::getFormattedMessage)
        .filter(message -> message.contains("LEAK")).toList());
  }

  private static HttpResponse<String> post(HttpClient http, URI uri, String body) throws Exception {
    return http.send(request(uri, body), HttpResponse.BodyHandlers.ofString());
  }

  private static HttpRequest request(URI uri, String body) {
    return HttpRequest.newBuilder(uri).header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(body)).build();
  }
}
