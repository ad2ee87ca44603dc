package io.switchboard.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.switchboard.fakeupstream.FakeUpstream;
import io.vertx.core.Vertx;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The {@code switchboard} command as people run it: a server process and worker processes that
 * dial in, killed and stopped with real signals.
 */
class ProcessesTest {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Pattern LISTENING = Pattern.compile("listening on http://[^:]+:(\\d+)");

  @TempDir
  Path dataDir;

  private final HttpClient http = HttpClient.newHttpClient();
  private final List<Process> processes = new ArrayList<>();
  private Vertx vertx;
  private FakeUpstream fake;

  @BeforeEach
  void startUpstream() {
    vertx = Vertx.vertx();
    fake = new FakeUpstream(vertx, FakeUpstream.Behavior.defaults().withModels("m").withTokens(40, 50)).start(0).await();
  }

  @AfterEach
  void stopEverything() {
    processes.forEach(Process::destroyForcibly);
    vertx.close().await();
  }

  /** A child JVM running {@code switchboard args...}, with its output collected line by line. */
  private Child launch(String... args) throws IOException {
    String java = ProcessHandle.current().info().command().orElse("java");
    List<String> command = new ArrayList<>(List.of(java, "-cp", System.getProperty("java.class.path"), Main.class.getName()));
    command.addAll(List.of(args));
    Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
    processes.add(process);
    return new Child(process);
  }

  private static final class Child {
    final Process process;
    final LinkedBlockingQueue<String> lines = new LinkedBlockingQueue<>();
    final StringBuffer all = new StringBuffer();
    final Thread reader;

    Child(Process process) {
      this.process = process;
      reader = Thread.ofPlatform().daemon().start(() -> {
        try (BufferedReader reader = process.inputReader(StandardCharsets.UTF_8)) {
          for (String line = reader.readLine(); line != null; line = reader.readLine()) {
            lines.add(line);
            all.append(line).append('\n');
          }
        } catch (IOException ignored) {
          // the process ended
        }
      });
    }

    /** Everything the process printed, once it has exited. */
    String finalOutput() throws InterruptedException {
      reader.join(TimeUnit.SECONDS.toMillis(5));
      return all.toString();
    }

    String awaitLine(Pattern pattern) throws InterruptedException {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
      while (System.nanoTime() < deadline) {
        String line = lines.poll(100, TimeUnit.MILLISECONDS);
        if (line != null && pattern.matcher(line).find()) {
          return line;
        }
      }
      fail("no line matching " + pattern + " in:\n" + all);
      return null;
    }
  }

  private int startServer() throws Exception {
    Child server = launch("server", "--host", "127.0.0.1", "--port", "0", "--data-dir", dataDir.toString(),
        "--client-key", "ck", "--heartbeat-interval", "300ms", "--drain-timeout", "20s");
    Matcher m = LISTENING.matcher(server.awaitLine(LISTENING));
    assertTrue(m.find());
    serverProcess = server.process;
    return Integer.parseInt(m.group(1));
  }

  private Process serverProcess;

  private Child startWorker(int port, String id) throws IOException {
    return launch("worker", "--server", "http://127.0.0.1:" + port, "--client-key", "ck", "--worker-id", id,
        "--upstream", fake.baseUrl(), "--max-concurrency", "2", "--reconnect-max", "500ms");
  }

  private JsonNode models(int port) throws Exception {
    return JSON.readTree(http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/models")).build(),
        HttpResponse.BodyHandlers.ofString()).body());
  }

  private HttpRequest chat(int port, boolean stream) {
    return HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/chat/completions"))
        .POST(HttpRequest.BodyPublishers.ofString("{\"model\":\"m\",\"stream\":" + stream + ",\"messages\":[]}")).build();
  }

  /** SIGTERM, as an operator or a service manager sends it; Process.destroy would also close our end of its output. */
  private static void terminate(Process process) throws IOException, InterruptedException {
    assertEquals(0, new ProcessBuilder("kill", "-TERM", Long.toString(process.pid())).start().waitFor());
  }

  private static void eventually(String what, BooleanSupplier condition) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        fail("timed out waiting until " + what);
      }
      Thread.sleep(50);
    }
  }

  private boolean servedBy(int port, int workers) {
    try {
      JsonNode data = models(port).path("data");
      return data.size() == 1 && data.get(0).path("workers").size() == workers;
    } catch (Exception e) {
      return false;
    }
  }

  @Test
  void aKilledWorkerEndsItsStreamWithAnErrorAndTheOtherTakesOver() throws Exception {
    int port = startServer();
    Child first = startWorker(port, "first");
    Child second = startWorker(port, "second");
    eventually("both workers serve m", () -> servedBy(port, 2));

    HttpResponse<InputStream> stream = http.send(chat(port, true), HttpResponse.BodyHandlers.ofInputStream());
    String victim = stream.headers().firstValue("X-Switchboard-Worker").orElseThrow();
    BufferedReader reader = new BufferedReader(new InputStreamReader(stream.body(), StandardCharsets.UTF_8));
    assertTrue(reader.readLine().startsWith("data: "));
    (victim.equals("first") ? first : second).process.destroyForcibly().waitFor();
    String last = null;
    for (String line = reader.readLine(); line != null; line = reader.readLine()) {
      if (line.startsWith("data: ")) {
        last = line;
      }
    }
    assertTrue(last != null && last.contains("\"worker_lost\""), "the stream ended with an error event: " + last);

    eventually("only the survivor serves m", () -> servedBy(port, 1));
    HttpResponse<String> after = http.send(chat(port, false), HttpResponse.BodyHandlers.ofString());
    assertEquals(200, after.statusCode());
    assertTrue(!victim.equals(after.headers().firstValue("X-Switchboard-Worker").orElseThrow()));
  }

  @Test
  void sigtermDrainsTheServerAndTheWorkerWithoutLosingTheRequestsInFlight() throws Exception {
    int port = startServer();
    Child worker = startWorker(port, "solo");
    eventually("the worker serves m", () -> servedBy(port, 1));

    CompletableFuture<HttpResponse<String>> beforeWorkerDrain = http.sendAsync(chat(port, true), HttpResponse.BodyHandlers.ofString());
    eventually("the upstream is answering", () -> fake.inFlight() == 1);
    terminate(worker.process);
    HttpResponse<String> finished = beforeWorkerDrain.get(20, TimeUnit.SECONDS);
    assertEquals(200, finished.statusCode());
    assertTrue(finished.body().endsWith("data: [DONE]\n\n"), "the stream completed: " + finished.body());
    assertTrue(worker.process.waitFor(20, TimeUnit.SECONDS), "the drained worker exited");
    String output = worker.finalOutput();
    assertTrue(output.contains("drained; leaving the server"), output);

    startWorker(port, "solo-again");
    eventually("the new worker serves m", () -> servedBy(port, 1));
    CompletableFuture<HttpResponse<String>> beforeServerDrain = http.sendAsync(chat(port, true), HttpResponse.BodyHandlers.ofString());
    eventually("the upstream is answering", () -> fake.inFlight() == 1);
    terminate(serverProcess);
    eventually("health says draining", () -> {
      try {
        return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/healthz")).build(),
            HttpResponse.BodyHandlers.ofString()).statusCode() == 503;
      } catch (Exception e) {
        return false;
      }
    });
    assertEquals(503, http.send(chat(port, false), HttpResponse.BodyHandlers.ofString()).statusCode());
    HttpResponse<String> drained = beforeServerDrain.get(20, TimeUnit.SECONDS);
    assertEquals(200, drained.statusCode());
    assertTrue(drained.body().endsWith("data: [DONE]\n\n"), "the stream completed: " + drained.body());
    assertTrue(serverProcess.waitFor(20, TimeUnit.SECONDS), "the drained server exited");
  }

  @Test
  void sigtermToTheServerStopsItsInstancesAndTheirChildren() throws Exception {
    // The instance is a shell that starts a second process, as wrappers around model servers do:
    // both must go with the server.
    String java = ProcessHandle.current().info().command().orElse("java");
    Path script = dataDir.resolve("fake-llama-server.sh");
    Files.writeString(script, "#!/bin/sh\nsleep 600 &\n'" + java + "' -cp '" + System.getProperty("java.class.path")
        + "' " + FakeUpstream.class.getName() + " \"$@\"\n");
    script.toFile().setExecutable(true);
    int port = startServer();
    HttpResponse<String> created = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/api/v1/instances/local"))
        .POST(HttpRequest.BodyPublishers.ofString("{\"model\":\"m.gguf\",\"command_override\":\"" + script + "\"}")).build(),
        HttpResponse.BodyHandlers.ofString());
    JsonNode instance = JSON.readTree(created.body());
    assertEquals("running", instance.path("status").asText(), created.body());
    ProcessHandle shell = ProcessHandle.of(instance.path("pid").asLong()).orElseThrow();
    List<ProcessHandle> family = new ArrayList<>(shell.descendants().toList());
    family.add(shell);
    assertTrue(family.size() >= 3, "the shell, its sleep and its server: " + family);

    terminate(serverProcess);
    assertTrue(serverProcess.waitFor(30, TimeUnit.SECONDS), "the server exited");
    eventually("no process of the instance is left", () -> family.stream().noneMatch(ProcessHandle::isAlive));
  }
}
