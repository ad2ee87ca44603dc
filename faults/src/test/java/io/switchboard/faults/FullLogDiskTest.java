package io.switchboard.faults;

import static io.switchboard.faults.Cluster.eventually;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.switchboard.fakeupstream.FakeUpstream;
import java.io.File;
import java.net.ServerSocket;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The server's logs go where every write fails with "no space left on device" ({@code /dev/full}):
 * it starts, serves and drains all the same.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class FullLogDiskTest {

  @RegisterExtension
  final Cluster cluster = new Cluster();

  @Test
  void aServerWhoseLogsCannotBeWrittenKeepsServing() throws Exception {
    File full = new File("/dev/full");
    org.junit.jupiter.api.Assumptions.assumeTrue(full.canWrite(), "no /dev/full on this machine");
    FakeUpstream upstream = cluster.fake(FakeUpstream.Behavior.defaults().withModels("m").withTokens(10, 5));
    int port;
    try (ServerSocket free = new ServerSocket(0)) {
      port = free.getLocalPort();
    }
    // LOG_LEVEL=DEBUG: every request writes log lines, and every one of those writes fails.
    Child serverChild = cluster.launch(b -> {
      b.environment().put("LOG_LEVEL", "DEBUG");
      return b.redirectErrorStream(false).redirectOutput(full).redirectError(full);
    }, "server", "--host", "127.0.0.1", "--port", String.valueOf(port), "--data-dir", cluster.dataDir.toString(),
        "--client-key", "ck", "--heartbeat-interval", "300ms");
    Cluster.Server server = new Cluster.Server(serverChild, port);
    eventually("the server answers", () -> {
      try {
        return cluster.get(server, "/healthz").statusCode() == 200;
      } catch (Exception e) {
        return false;
      }
    });
    cluster.worker(server, "solo", upstream.baseUrl(), "--max-concurrency", "200");
    eventually("the worker serves m", () -> cluster.servedBy(server, "m", 1));

    long started = System.nanoTime();
    List<CompletableFuture<HttpResponse<String>>> answers = new ArrayList<>();
    for (int i = 0; i < 200; i++) {
      answers.add(cluster.http.sendAsync(cluster.chat(server, "m", i % 2 == 0), HttpResponse.BodyHandlers.ofString()));
    }
    Tally tally = Tally.of(answers, 60);
    long tookMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started);
    serverChild.terminate();
    boolean exited = serverChild.process.waitFor(20, TimeUnit.SECONDS);
    Figures.fault(tally.row("log disk full (server output to /dev/full, LOG_LEVEL=DEBUG)", -1,
        "200 requests (100 streamed) in " + tookMs + " ms while every log write fails; then SIGTERM: exit status "
            + (exited ? serverChild.process.exitValue() : "none")));

    assertEquals(200, tally.succeeded, "every request was served");
    assertTrue(exited, "the server still drains and exits");
    assertEquals(0, serverChild.process.exitValue());
  }
}
