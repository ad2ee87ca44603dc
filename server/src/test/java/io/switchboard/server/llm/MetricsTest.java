package io.switchboard.server.llm;

import static io.switchboard.server.llm.TestGateway.chatBody;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.switchboard.fakeupstream.FakeUpstream;
import io.switchboard.server.ServerConfig;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** Known traffic, then the Prometheus text and the JSON metrics are read back and checked against it. */
class MetricsTest {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Pattern SAMPLE = Pattern.compile("^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{[^}]*})? ([-+0-9.eE]+|NaN)$");

  /** Prometheus text as {name{labels} -> value}; comment lines are skipped, every other line must parse. */
  static Map<String, Double> parse(String text) {
    Map<String, Double> samples = new HashMap<>();
    for (String line : text.split("\n")) {
      if (line.isBlank() || line.startsWith("#")) {
        continue;
      }
      Matcher m = SAMPLE.matcher(line);
      assertTrue(m.matches(), "a Prometheus sample line: " + line);
      samples.put(m.group(1) + (m.group(2) == null ? "" : m.group(2)), Double.parseDouble(m.group(3)));
    }
    return samples;
  }

  /** The one sample of this metric whose labels include all of {@code labels}. */
  static double sample(Map<String, Double> samples, String name, String... labels) {
    return samples.entrySet().stream()
        .filter(e -> e.getKey().startsWith(name + "{") || e.getKey().equals(name))
        .filter(e -> List.of(labels).stream().allMatch(label -> e.getKey().contains(label)))
        .mapToDouble(Map.Entry::getValue).sum();
  }

  @Test
  void prometheusAndJsonMetricsAddUpToTheTraffic() throws Exception {
    ServerConfig base = TestGateway.config(null, null, 10, Duration.ofSeconds(5), Duration.ofSeconds(10), List.of());
    ServerConfig config = new ServerConfig(base.host(), 0, base.dataDir(), null, null, base.requestTimeout(), base.queueSize(),
        base.queueTimeout(), base.drainTimeout(), base.heartbeatInterval(), base.maxBodyBytes(), base.maxFrameBytes(),
        base.modelPollInterval(), List.of(), null, null, null, null, null, null, 0,
        Map.of("chat", new ServerConfig.Price(1.0, 2.0)), null, null, null);
    try (TestGateway gateway = TestGateway.start(config)) {
      gateway.worker(gateway.fake(FakeUpstream.Behavior.defaults().withModels("chat").withTokens(12, 0)),
          c -> c.withIdentity("gpu-1", null));
      JsonNode before = JSON.readTree(gateway.get("/api/v1/metrics").body());
      assertTrue(before.get("success_rate").isNull() && before.get("api_costs").isNull(),
          "before any request, the rates are there and null: " + before);
      for (int i = 0; i < 3; i++) {
        assertEquals(200, gateway.post("/v1/chat/completions", chatBody("chat", false)).statusCode());
      }
      String streamWithUsage = "{\"model\":\"chat\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
          + "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
      assertEquals(200, gateway.post("/v1/chat/completions", streamWithUsage).statusCode());
      assertEquals(404, gateway.post("/v1/chat/completions", chatBody("nope", false)).statusCode());

      assertEquals(404, gateway.get("/metrics").statusCode(), "with metrics_port set, /metrics is only there");
      System.gc();
      HttpResponse<String> scraped = gateway.http().send(HttpRequest.newBuilder(
          URI.create("http://127.0.0.1:" + gateway.server.metricsPort() + "/metrics")).build(), HttpResponse.BodyHandlers.ofString());
      assertEquals(200, scraped.statusCode());
      assertTrue(scraped.headers().firstValue("Content-Type").orElse("").startsWith("text/plain"));
      Map<String, Double> samples = parse(scraped.body());

      assertEquals(4, sample(samples, "switchboard_requests_total", "model=\"chat\"", "status=\"200\""));
      assertEquals(1, sample(samples, "switchboard_requests_total", "model=\"nope\"", "status=\"404\""));
      assertEquals(4, sample(samples, "switchboard_request_duration_seconds_count", "model=\"chat\""));
      assertEquals(4, sample(samples, "switchboard_time_to_first_token_seconds_count", "model=\"chat\""));
      assertEquals(4 * 5, sample(samples, "switchboard_tokens_total", "model=\"chat\"", "direction=\"in\""));
      assertEquals(4 * 12, sample(samples, "switchboard_tokens_total", "model=\"chat\"", "direction=\"out\""));
      assertEquals(0, sample(samples, "switchboard_requests_in_flight"));
      assertEquals(0, sample(samples, "switchboard_queue_length"));
      assertEquals(4, sample(samples, "switchboard_worker_max_concurrency", "worker=\"gpu-1\""));
      assertTrue(sample(samples, "jvm_memory_used_bytes") > 0, "JVM metrics are there");
      long collected = ManagementFactory.getGarbageCollectorMXBeans().stream().mapToLong(GarbageCollectorMXBean::getCollectionCount).sum();
      double counted = sample(samples, "jvm_gc_collection_seconds_count");
      assertTrue(counted >= 1 && counted <= collected, "the collections so far, " + counted + " of the JVM's " + collected);

      JsonNode json = JSON.readTree(gateway.get("/api/v1/metrics").body());
      assertEquals("online", json.path("server_status").asText());
      assertEquals("available", json.path("llm_status").path("chat").asText());
      assertEquals(5, json.path("total_requests").asInt());
      assertEquals(80.0, json.path("success_rate").asDouble(), 0.001);
      assertEquals(0, json.path("active_tasks").asInt());
      assertEquals(0, json.path("queue_length").asInt());
      assertTrue(json.path("tokens_per_second").asDouble() > 0);
      assertTrue(json.path("average_response_time").asDouble() > 0);
      assertEquals((4 * 5 * 1.0 + 4 * 12 * 2.0) / 1_000_000, json.path("api_costs").asDouble(), 1e-9);
    }
  }
}
