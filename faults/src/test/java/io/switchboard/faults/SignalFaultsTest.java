package io.switchboard.faults;

import static io.switchboard.faults.Cluster.eventually;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.switchboard.fakeupstream.FakeUpstream;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/** SIGTERM to the server and to a worker with requests in flight: they finish, new ones are refused, the process exits 0. */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class SignalFaultsTest {

  @RegisterExtension
  final Cluster cluster = new Cluster();
  private FakeUpstream upstream;

  @BeforeEach
  void startUpstream() {
    upstream = cluster.fake(FakeUpstream.Behavior.defaults().withModels("m").withTokens(40, 50));
  }

  /** A server, one worker of four slots, and four streams running through them. */
  private record Running(Cluster.Server server, Child worker, List<CompletableFuture<HttpResponse<String>>> streams) {}

  private Running fourStreams(List<String> serverArgs, List<String> workerArgs) throws Exception {
    Cluster.Server server = cluster.server(serverArgs.toArray(String[]::new));
    List<String> args = new ArrayList<>(List.of("--max-concurrency", "4"));
    args.addAll(workerArgs);
    Child worker = cluster.worker(server, "solo", upstream.baseUrl(), args.toArray(String[]::new));
    eventually("the worker serves m", () -> cluster.servedBy(server, "m", 1));
    List<CompletableFuture<HttpResponse<String>>> streams = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      streams.add(cluster.http.sendAsync(cluster.chat(server, "m", true), HttpResponse.BodyHandlers.ofString()));
    }
    eventually("the upstream is answering all four", () -> upstream.inFlight() == 4);
    return new Running(server, worker, streams);
  }

  @Test
  void aWorkerSigtermFinishesItsRequestsAndExitsZero() throws Exception {
    Running running = fourStreams(List.of(), List.of());
    Cluster.Server server = running.server();
    Child worker = running.worker();
    List<CompletableFuture<HttpResponse<String>>> inFlight = running.streams();
    long signalled = System.nanoTime();
    worker.terminate();
    eventually("the draining worker takes no more work", () -> cluster.servedBy(server, "m", 0) || draining(server));
    HttpResponse<String> refused = cluster.http.send(cluster.chat(server, "m", false), HttpResponse.BodyHandlers.ofString());
    Tally tally = Tally.of(inFlight, 30);
    assertTrue(worker.process.waitFor(20, TimeUnit.SECONDS), "the drained worker exited");
    long exited = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - signalled);
    tally.sent++;
    tally.count(Tally.judge(refused));
    Figures.fault(tally.row("worker SIGTERM", exited,
        "4 streams of 2 s in flight, then 1 new request (503 or 404: no worker left for m); recovery: signal to exit"));

    assertEquals(4, tally.succeeded, "the streams in flight completed");
    assertTrue(refused.statusCode() == 503 || refused.statusCode() == 404, refused.statusCode() + " " + refused.body());
    assertEquals(0, worker.process.exitValue());
    assertTrue(worker.finalOutput().contains("drained; leaving the server"));
  }

  @Test
  void aWorkerSigtermPastItsDrainTimeoutEndsTheRestClearlyAndExitsZero() throws Exception {
    upstream.behave(upstream.behavior().withTokens(200, 50));
    Running running = fourStreams(List.of(), List.of("--drain-timeout", "1s"));
    long signalled = System.nanoTime();
    running.worker().terminate();
    Tally tally = Tally.of(running.streams(), 30);
    assertTrue(running.worker().process.waitFor(20, TimeUnit.SECONDS), "the worker exited");
    long exited = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - signalled);
    Figures.fault(tally.row("worker SIGTERM past drain_timeout", exited,
        "4 streams of 10 s, the worker's drain_timeout 1 s: each ends with an error event; recovery: signal to exit"));

    assertEquals(0, tally.lost + tally.hung, "each ended with an error a client can read");
    assertEquals(4, tally.failedClearly);
    assertEquals(0, running.worker().process.exitValue(), running.worker().finalOutput());
    eventually("the upstream saw every request cancelled", () -> upstream.inFlight() == 0);
    eventually("no slot is held", () -> {
      try {
        return cluster.state(running.server()).path("workers").isEmpty();
      } catch (Exception e) {
        return false;
      }
    });
  }

  @Test
  void aServerSigtermFinishesItsRequestsRefusesNewOnesAndExitsZero() throws Exception {
    Running running = fourStreams(List.of("--drain-timeout", "20s"), List.of());
    Cluster.Server server = running.server();
    List<CompletableFuture<HttpResponse<String>>> inFlight = running.streams();
    long signalled = System.nanoTime();
    server.child().terminate();
    eventually("health says draining", () -> status(server, "/healthz") == 503);
    HttpResponse<String> refused = cluster.http.send(cluster.chat(server, "m", false), HttpResponse.BodyHandlers.ofString());
    Tally tally = Tally.of(inFlight, 30);
    assertTrue(server.child().process.waitFor(20, TimeUnit.SECONDS), "the drained server exited");
    long exited = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - signalled);
    tally.sent++;
    tally.count(Tally.judge(refused));
    Figures.fault(tally.row("server SIGTERM within drain_timeout", exited,
        "4 streams of 2 s in flight, then 1 new request (503 draining); recovery: signal to exit"));

    assertEquals(4, tally.succeeded, "the streams in flight completed");
    assertEquals(503, refused.statusCode());
    assertEquals(0, server.child().process.exitValue(), server.child().finalOutput());
  }

  @Test
  void aServerSigtermPastItsDrainTimeoutEndsTheRestClearlyAndExitsZero() throws Exception {
    upstream.behave(upstream.behavior().withTokens(200, 50));
    Running running = fourStreams(List.of("--drain-timeout", "1s"), List.of());
    Cluster.Server server = running.server();
    List<CompletableFuture<HttpResponse<String>>> inFlight = running.streams();
    long signalled = System.nanoTime();
    server.child().terminate();
    Tally tally = Tally.of(inFlight, 30);
    assertTrue(server.child().process.waitFor(20, TimeUnit.SECONDS), "the server exited");
    long exited = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - signalled);
    Figures.fault(tally.row("server SIGTERM past drain_timeout", exited,
        "4 streams of 10 s, drain_timeout 1 s: each ends with an error event; recovery: signal to exit"));

    assertEquals(0, tally.lost + tally.hung, "each ended with an error a client can read: " + tally.row("", 0, ""));
    assertEquals(4, tally.failedClearly);
    assertEquals(0, server.child().process.exitValue(), server.child().finalOutput());
    eventually("the upstream saw every request cancelled", () -> upstream.inFlight() == 0);
  }

  private boolean draining(Cluster.Server server) {
    try {
      return cluster.state(server).path("workers").path(0).path("draining").asBoolean();
    } catch (Exception e) {
      return false;
    }
  }

  private int status(Cluster.Server server, String path) {
    try {
      return cluster.get(server, path).statusCode();
    } catch (Exception e) {
      return -1;
    }
  }
}
