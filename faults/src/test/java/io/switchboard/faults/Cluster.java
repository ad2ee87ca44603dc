package io.switchboard.faults;

import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.switchboard.cli.Main;
import io.switchboard.fakeupstream.FakeUpstream;
import io.vertx.core.Vertx;
import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.UnaryOperator;
import java.util.regex.Pattern;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * The {@code switchboard} command run as people run it, in child JVMs: a server, workers and relays,
 * with fake upstreams in this JVM. A test registers one as an extension; after each test it kills
 * whatever is still running and fails if any process the suite started, or any process those
 * started, is left behind or a zombie.
 */
final class Cluster implements AutoCloseable, AfterEachCallback {

  static final ObjectMapper JSON = new ObjectMapper();
  static final String JAVA = ProcessHandle.current().info().command().orElse("java");
  private static final Pattern LISTENING = Pattern.compile("listening on http://[^:]+:(\\d+)");

  final Vertx vertx = Vertx.vertx();
  final Path dataDir;
  /** HTTP/1.1, as most OpenAI clients speak it (the JDK's h2c client also refuses a 101st stream on one connection). */
  final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(5)).build();
  private final List<Child> children = new ArrayList<>();
  /** What the children had started when they were killed: no longer this JVM's descendants, never to outlive the test. */
  private final List<ProcessHandle> orphans = new java.util.concurrent.CopyOnWriteArrayList<>();
  /** The key this cluster's own requests carry, once a test gave the server one. */
  String apiKey;

  Cluster() {
    try {
      dataDir = Files.createTempDirectory("switchboard-faults");
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** A fake OpenAI-compatible upstream in this JVM. */
  FakeUpstream fake(FakeUpstream.Behavior behavior) {
    return new FakeUpstream(vertx, behavior).start(0).await();
  }

  /** A child JVM running {@code switchboard args...}; {@code redirect} may send its output elsewhere. */
  Child launch(UnaryOperator<ProcessBuilder> redirect, String... args) throws IOException {
    List<String> command = new ArrayList<>(List.of(JAVA, "-Xmx256m", "-cp", System.getProperty("java.class.path"),
        Main.class.getName()));
    command.addAll(List.of(args));
    Child child = new Child(redirect.apply(new ProcessBuilder(command).redirectErrorStream(true)).start(), orphans);
    children.add(child);
    return child;
  }

  Child launch(String... args) throws IOException {
    return launch(b -> b, args);
  }

  /** A started server on a free port: {@code --client-key ck}, quick heartbeats, then {@code extra}. */
  Server server(String... extra) throws Exception {
    List<String> args = new ArrayList<>(List.of("server", "--host", "127.0.0.1", "--port", "0", "--data-dir",
        dataDir.toString(), "--client-key", "ck", "--heartbeat-interval", "300ms"));
    args.addAll(List.of(extra));
    Child child = launch(args.toArray(String[]::new));
    int port = Integer.parseInt(child.awaitLine(LISTENING).group(1));
    return new Server(child, port);
  }

  Child worker(Server server, String id, String upstream, String... extra) throws IOException {
    List<String> args = new ArrayList<>(List.of("worker", "--server", server.url(), "--client-key", "ck", "--worker-id", id,
        "--upstream", upstream, "--reconnect-max", "500ms"));
    args.addAll(List.of(extra));
    return launch(args.toArray(String[]::new));
  }

  /** The server, and what a client sees of it. */
  record Server(Child child, int port) {
    String url() {
      return "http://127.0.0.1:" + port;
    }

    URI uri(String path) {
      return URI.create(url() + path);
    }
  }

  HttpRequest chat(Server server, String model, boolean stream, String... headers) {
    HttpRequest.Builder b = HttpRequest.newBuilder(server.uri("/v1/chat/completions")).timeout(Duration.ofSeconds(60))
        .POST(HttpRequest.BodyPublishers.ofString("{\"model\":\"" + model + "\",\"stream\":" + stream
            + ",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"));
    if (headers.length > 0) {
      b.headers(headers);
    }
    return keyed(b).build();
  }

  private HttpRequest.Builder keyed(HttpRequest.Builder request) {
    return apiKey == null ? request : request.header("Authorization", "Bearer " + apiKey);
  }

  HttpResponse<String> get(Server server, String path) throws IOException, InterruptedException {
    return http.send(keyed(HttpRequest.newBuilder(server.uri(path)).timeout(Duration.ofSeconds(20))).build(),
        HttpResponse.BodyHandlers.ofString());
  }

  HttpResponse<String> send(Server server, String method, String path, String body) throws IOException, InterruptedException {
    return http.send(keyed(HttpRequest.newBuilder(server.uri(path)).timeout(Duration.ofSeconds(20))
        .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body)))
        .build(), HttpResponse.BodyHandlers.ofString());
  }

  JsonNode state(Server server) throws IOException, InterruptedException {
    return JSON.readTree(get(server, "/api/state").body()).path("plugins").path("llm");
  }

  /** Whether {@code model} is served by exactly {@code workers} workers. */
  boolean servedBy(Server server, String model, int workers) {
    try {
      for (JsonNode m : JSON.readTree(get(server, "/v1/models").body()).path("data")) {
        if (m.path("id").asText().equals(model)) {
          return m.path("workers").size() == workers;
        }
      }
      return workers == 0;
    } catch (Exception e) {
      return false;
    }
  }

  static void eventually(String what, BooleanSupplier condition) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        fail("timed out waiting until " + what);
      }
      Thread.sleep(20);
    }
  }

  /** Processes this JVM started, and theirs, that are still there (zombies included). */
  private List<ProcessHandle> leftovers() {
    List<ProcessHandle> left = new ArrayList<>(ProcessHandle.current().descendants().filter(p -> !isKillHelper(p)).toList());
    orphans.stream().filter(ProcessHandle::isAlive).filter(p -> !left.contains(p)).forEach(left::add);
    return left;
  }

  /** The {@code kill} helpers the suite runs for signals finish at once and are not what is looked for. */
  private static boolean isKillHelper(ProcessHandle p) {
    return p.info().command().map(c -> c.endsWith(File.separator + "kill")).orElse(false);
  }

  /** Whether a process is a zombie: ended, and not reaped by its parent. */
  static boolean zombie(ProcessHandle p) {
    try {
      String stat = Files.readString(Path.of("/proc/" + p.pid() + "/stat"));
      return stat.substring(stat.lastIndexOf(')') + 2).startsWith("Z");
    } catch (IOException e) {
      return false;
    }
  }

  @Override
  public void afterEach(ExtensionContext context) throws Exception {
    close();
  }

  @Override
  public void close() throws Exception {
    for (Child child : children) {
      child.kill();
    }
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (!leftovers().isEmpty() && System.nanoTime() < deadline) {
      Thread.sleep(50);
    }
    List<String> left = leftovers().stream()
        .map(p -> p.pid() + (zombie(p) ? " (zombie)" : "") + " " + p.info().commandLine().orElse("?")).toList();
    vertx.close().await();
    if (!left.isEmpty()) {
      fail("processes left behind: " + left);
    }
  }
}
