package io.switchboard.server.llm;

import static org.junit.jupiter.api.Assertions.fail;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import io.switchboard.fakeupstream.FakeUpstream;
import io.switchboard.server.ServerConfig;
import io.switchboard.server.SwitchboardServer;
import io.switchboard.worker.WorkerAgent;
import io.switchboard.worker.WorkerConfig;
import io.switchboard.worker.backend.UpstreamBackend;
import io.vertx.core.Vertx;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.function.BooleanSupplier;
import java.util.function.UnaryOperator;

/**
 * A running server on a free port, with fake upstreams and real workers that dial in over
 * WebSocket, each worker on its own Vert.x instance so that a test can kill it like a crashed process.
 */
final class TestGateway implements AutoCloseable {

  final Vertx vertx = Vertx.vertx();
  final SwitchboardServer server;
  private final List<FakeUpstream> fakes = new ArrayList<>();
  private final Map<WorkerAgent, Vertx> workers = new IdentityHashMap<>();
  private final HttpClient http = HttpClient.newHttpClient();
  private final String clientKey;

  private TestGateway(ServerConfig config) {
    this.clientKey = config.clientKey();
    this.server = SwitchboardServer.start(vertx, config).await();
  }

  /** Test settings: quick heartbeats and timeouts, a fresh data directory, loopback only. */
  static ServerConfig config(String apiKey, String clientKey, int queueSize, Duration queueTimeout, Duration requestTimeout,
      List<ServerConfig.Upstream> upstreams) {
    return config(apiKey, clientKey, queueSize, queueTimeout, requestTimeout, upstreams, Duration.ofMillis(500));
  }

  /** As above, with the heartbeat interval given: a worker silent for three of them is dropped. */
  static ServerConfig config(String apiKey, String clientKey, int queueSize, Duration queueTimeout, Duration requestTimeout,
      List<ServerConfig.Upstream> upstreams, Duration heartbeat) {
    try {
      return new ServerConfig("127.0.0.1", 0, Files.createTempDirectory("switchboard-test"), apiKey, clientKey,
          requestTimeout, queueSize, queueTimeout, Duration.ofSeconds(10), heartbeat, 1L << 20,
          64 * 1024, Duration.ofMillis(300), upstreams, null, null, null, null, null, null, null, null, null, null, null);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  static TestGateway start() {
    return start(config(null, null, 100, Duration.ofSeconds(10), Duration.ofSeconds(10), List.of()));
  }

  static TestGateway start(ServerConfig config) {
    return new TestGateway(config);
  }

  FakeUpstream fake(FakeUpstream.Behavior behavior) {
    FakeUpstream fake = new FakeUpstream(vertx, behavior).start(0).await();
    fakes.add(fake);
    return fake;
  }

  WorkerConfig workerConfig() {
    return WorkerConfig.of(url(), clientKey)
        .withTimings(Duration.ofMillis(50), Duration.ofMillis(300), Duration.ofMillis(200), Duration.ofSeconds(10));
  }

  /** A worker serving the fake's models, registered before this returns. */
  WorkerAgent worker(FakeUpstream fake, UnaryOperator<WorkerConfig> customize) {
    WorkerAgent agent = unstartedWorker(fake, customize);
    agent.start().await();
    return agent;
  }

  WorkerAgent worker(FakeUpstream fake) {
    return worker(fake, c -> c);
  }

  WorkerAgent unstartedWorker(FakeUpstream fake, UnaryOperator<WorkerConfig> customize) {
    Vertx own = Vertx.vertx();
    WorkerAgent agent = new WorkerAgent(own, customize.apply(workerConfig()),
        new UpstreamBackend(own, fake.baseUrl(), null, List.of(), Duration.ofSeconds(30)));
    workers.put(agent, own);
    return agent;
  }

  /** Ends the worker's process-equivalent at once: its sockets close with no goodbye. */
  void kill(WorkerAgent agent) {
    workers.remove(agent).close().await();
  }

  String url() {
    return "http://127.0.0.1:" + server.port();
  }

  OpenAIClient openai(String apiKey) {
    return OpenAIOkHttpClient.builder().baseUrl(url() + "/v1").apiKey(apiKey).maxRetries(0)
        .timeout(Duration.ofSeconds(20)).build();
  }

  OpenAIClient openai() {
    return openai("unused");
  }

  HttpResponse<String> post(String path, String body, String... headers) {
    HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(url() + path))
        .POST(HttpRequest.BodyPublishers.ofString(body)).header("Content-Type", "application/json");
    if (headers.length > 0) {
      request.headers(headers);
    }
    return send(request.build());
  }

  /** Sends without waiting, for requests that must be in flight while the test acts. */
  CompletableFuture<HttpResponse<String>> postAsync(String path, String body) {
    return http.sendAsync(HttpRequest.newBuilder(URI.create(url() + path)).POST(HttpRequest.BodyPublishers.ofString(body)).build(),
        HttpResponse.BodyHandlers.ofString());
  }

  HttpResponse<String> get(String path, String... headers) {
    HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(url() + path)).GET();
    if (headers.length > 0) {
      request.headers(headers);
    }
    return send(request.build());
  }

  private HttpResponse<String> send(HttpRequest request) {
    try {
      return http.send(request, HttpResponse.BodyHandlers.ofString());
    } catch (IOException e) {
      throw new IllegalStateException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  HttpClient http() {
    return http;
  }

  /** Waits up to five seconds for the condition. */
  static void eventually(String what, BooleanSupplier condition) {
    long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        fail("timed out waiting until " + what);
      }
      try {
        Thread.sleep(20);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  static String chatBody(String model, boolean stream) {
    return "{\"model\":\"" + model + "\",\"stream\":" + stream + ",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
  }

  @Override
  public void close() {
    for (Vertx own : List.copyOf(workers.values())) {
      own.close().await();
    }
    server.close().await();
    vertx.close().await();
  }
}
