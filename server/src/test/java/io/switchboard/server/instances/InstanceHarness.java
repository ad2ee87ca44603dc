package io.switchboard.server.instances;

import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.switchboard.server.ServerConfig;
import io.switchboard.server.SwitchboardServer;
import io.vertx.core.Vertx;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.function.BooleanSupplier;

/**
 * A server whose instances are real child processes: {@link #fakeLlamaServer} is an executable
 * script that runs the fake OpenAI upstream in a JVM of its own, taking llama-server's command line.
 */
final class InstanceHarness implements AutoCloseable {

  static final ObjectMapper JSON = new ObjectMapper();

  final Path dataDir;
  final Vertx vertx = Vertx.vertx();
  final SwitchboardServer server;
  final ServerConfig config;
  private final HttpClient http = HttpClient.newHttpClient();
  private String key;

  InstanceHarness(Path dataDir, ServerConfig.InstanceSettings settings, List<String> managementKeys, List<String> inferenceKeys,
      String llamaServer) {
    this(dataDir, null, settings, managementKeys, inferenceKeys, llamaServer);
  }

  InstanceHarness(Path dataDir, String databaseUrl, ServerConfig.InstanceSettings settings, List<String> managementKeys,
      List<String> inferenceKeys, String llamaServer) {
    this.dataDir = dataDir;
    this.config = new ServerConfig("127.0.0.1", 0, dataDir, null, null, Duration.ofSeconds(10), 100, Duration.ofSeconds(10),
        Duration.ofSeconds(10), Duration.ofMillis(500), 1L << 20, 64 * 1024, Duration.ofMillis(300), List.of(), databaseUrl,
        managementKeys, inferenceKeys, llamaServer, settings, null, null, null, null, null, null);
    this.server = SwitchboardServer.start(vertx, config).await();
  }

  static InstanceHarness start(ServerConfig.InstanceSettings settings) {
    return new InstanceHarness(tempDir(), settings, List.of(), List.of(), null);
  }

  /** Quick timings: instances in ports 20100-20199, 20 s to start, 2 s to stop, idle checks every 200 ms. */
  static ServerConfig.InstanceSettings settings(int maxRunning, boolean lru) {
    return new ServerConfig.InstanceSettings("20100-20199", -1, maxRunning, lru, Duration.ofSeconds(20), Duration.ofSeconds(2),
        Duration.ofMillis(200), 64L * 1024);
  }

  static Path tempDir() {
    try {
      return Files.createTempDirectory("switchboard-instances");
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * An executable that runs the fake upstream with the arguments it is given, in a small JVM.
   *
   * @param prelude shell lines run first (a trap, an echo, an exit)
   */
  static String fakeLlamaServer(Path dir, String prelude) {
    String java = ProcessHandle.current().info().command().orElse("java");
    String script = "#!/bin/sh\n" + prelude + "\nexec '" + java + "' -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xmx64m -Xss512k"
        + " -cp '" + System.getProperty("java.class.path") + "' io.switchboard.fakeupstream.FakeUpstream \"$@\"\n";
    try {
      Path file = Files.createTempFile(dir, "fake-llama-server", ".sh");
      Files.writeString(file, script);
      Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rwx------"));
      return file.toString();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  String fakeLlamaServer() {
    return fakeLlamaServer(dataDir, "");
  }

  /** Sends this key as {@code Authorization: Bearer} from now on. */
  InstanceHarness as(String apiKey) {
    this.key = apiKey;
    return this;
  }

  String url() {
    return "http://127.0.0.1:" + server.port();
  }

  HttpResponse<String> call(String method, String path, String body) {
    HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(url() + path)).timeout(Duration.ofSeconds(60))
        .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body))
        .header("Content-Type", "application/json");
    if (key != null) {
      request.header("Authorization", "Bearer " + key);
    }
    try {
      return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  JsonNode instance(String name) {
    return json(call("GET", "/api/v1/instances/" + name, null));
  }

  String status(String name) {
    return instance(name).path("status").asText();
  }

  static JsonNode json(HttpResponse<String> response) {
    try {
      return JSON.readTree(response.body());
    } catch (IOException e) {
      throw new AssertionError("not JSON (" + response.statusCode() + "): " + response.body(), e);
    }
  }

  static String chat(String model) {
    return "{\"model\":\"" + model + "\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
  }

  static boolean alive(long pid) {
    return ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
  }

  /** Waits up to {@code seconds} for the condition. */
  static void eventually(String what, int seconds, BooleanSupplier condition) {
    long deadline = System.nanoTime() + Duration.ofSeconds(seconds).toNanos();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        fail("timed out waiting until " + what);
      }
      try {
        Thread.sleep(50);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  /** Closes the server and checks that it left no instance process behind. */
  @Override
  public void close() {
    server.close().await();
    vertx.close().await();
    try {
      eventually("every instance process has ended", 5, () -> instanceProcesses().isEmpty());
    } finally {
      instanceProcesses().forEach(ProcessHandle::destroyForcibly);
    }
  }

  private static List<ProcessHandle> instanceProcesses() {
    return ProcessHandle.current().descendants()
        .filter(p -> p.isAlive() && p.info().commandLine().orElse("").contains("FakeUpstream"))
        .toList();
  }
}
