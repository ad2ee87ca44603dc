package io.switchboard.faults;

import static io.switchboard.faults.Cluster.eventually;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.switchboard.fakeupstream.FakeUpstream;
import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/** Workers and clients that go away: killed with SIGKILL, or a client that stops listening. */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class WorkerFaultsTest {

  @RegisterExtension
  final Cluster cluster = new Cluster();

  @Test
  void aWorkerKilledBeforeTheFirstByteHasItsRequestsRetriedOnAnother() throws Exception {
    FakeUpstream upstream = cluster.fake(FakeUpstream.Behavior.defaults().withModels("m").withFirstByteDelay(1_500).withTokens(5, 0));
    Cluster.Server server = cluster.server();
    Child first = cluster.worker(server, "first", upstream.baseUrl(), "--max-concurrency", "8");
    Child second = cluster.worker(server, "second", upstream.baseUrl(), "--max-concurrency", "8");
    eventually("both workers serve m", () -> cluster.servedBy(server, "m", 2));

    List<CompletableFuture<HttpResponse<String>>> answers = new ArrayList<>();
    for (int i = 0; i < 12; i++) {
      answers.add(cluster.http.sendAsync(cluster.chat(server, "m", i % 3 == 0), HttpResponse.BodyHandlers.ofString()));
    }
    eventually("all twelve are at the upstream", () -> upstream.inFlight() == 12);
    long killed = System.nanoTime();
    first.kill();
    Tally tally = Tally.of(answers, 30);
    long recovered = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - killed);
    Figures.fault(tally.row("worker SIGKILL before the first byte", recovered,
        "2 workers, 12 requests (4 streamed) held 1.5 s at the upstream; recovery: kill to the last answer"));

    assertEquals(12, tally.succeeded, "every request was retried on the survivor and answered");
    for (CompletableFuture<HttpResponse<String>> answer : answers) {
      assertEquals("second", answer.get().headers().firstValue("X-Switchboard-Worker").orElseThrow());
    }
    assertTrue(second.process.isAlive());
  }

  @Test
  void aWorkerKilledMidStreamEndsItsStreamsWithAnErrorAndFreesEverything() throws Exception {
    FakeUpstream upstream = cluster.fake(FakeUpstream.Behavior.defaults().withModels("m").withTokens(40, 50));
    Cluster.Server server = cluster.server();
    Child first = cluster.worker(server, "first", upstream.baseUrl(), "--max-concurrency", "3");
    cluster.worker(server, "second", upstream.baseUrl(), "--max-concurrency", "3");
    eventually("both workers serve m", () -> cluster.servedBy(server, "m", 2));

    List<Tally.Reading> streams = new ArrayList<>();
    for (int i = 0; i < 6; i++) {
      streams.add(new Tally.Reading(cluster.http.send(cluster.chat(server, "m", true), HttpResponse.BodyHandlers.ofInputStream())));
    }
    List<CompletableFuture<HttpResponse<String>>> queued = new ArrayList<>();
    for (int i = 0; i < 2; i++) {
      queued.add(cluster.http.sendAsync(cluster.chat(server, "m", true), HttpResponse.BodyHandlers.ofString()));
    }
    eventually("every running stream has reached its client", () -> streams.stream().allMatch(s -> s.events >= 3));
    long onVictim = streams.stream().filter(s -> s.response.headers().firstValue("X-Switchboard-Worker").orElse("").equals("first")).count();
    long killed = System.nanoTime();
    first.kill();
    Tally tally = Tally.ofReadings(streams, 30);
    tally.add(Tally.of(queued, 30));
    long recovered = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - killed);
    Figures.fault(tally.row("worker SIGKILL mid-stream", recovered,
        "2 workers of 3 slots, 6 streams of 2 s under way and 2 queued; recovery: kill to the last stream's end"));

    assertEquals(0, tally.lost + tally.hung, "every stream ended, and said how");
    assertEquals(3, onVictim, "the router spread the streams over both workers");
    assertEquals(onVictim, tally.failedClearly, "the victim's streams ended with an error event");
    assertEquals(8 - onVictim, tally.succeeded, "the survivor's streams and the queued ones completed");
    eventually("nothing queued, no slot held", () -> {
      try {
        var llm = cluster.state(server);
        return llm.path("queued").asInt(-1) == 0 && llm.path("workers").size() == 1
            && llm.path("workers").get(0).path("in_flight").asInt(-1) == 0;
      } catch (Exception e) {
        return false;
      }
    });
    assertEquals(200, cluster.http.send(cluster.chat(server, "m", false), HttpResponse.BodyHandlers.ofString()).statusCode());
  }

  @Test
  void aClientThatLeavesMidStreamCancelsTheUpstreamAndFreesTheSlotAtOnce() throws Exception {
    FakeUpstream upstream = cluster.fake(FakeUpstream.Behavior.defaults().withModels("m").withTokens(400, 20));
    Cluster.Server server = cluster.server();
    cluster.worker(server, "solo", upstream.baseUrl(), "--max-concurrency", "1");
    eventually("the worker serves m", () -> cluster.servedBy(server, "m", 1));

    Tally tally = new Tally();
    long slowestFreeMs = 0;
    for (int i = 0; i < 10; i++) {
      tally.sent++;
      int abortedBefore = upstream.aborted();
      HttpResponse<InputStream> stream = cluster.http.send(cluster.chat(server, "m", true), HttpResponse.BodyHandlers.ofInputStream());
      BufferedReader reader = new BufferedReader(new InputStreamReader(stream.body(), StandardCharsets.UTF_8));
      assertTrue(reader.readLine().startsWith("data: "));
      long left = System.nanoTime();
      stream.body().close();
      eventually("the upstream saw the client go", () -> upstream.aborted() == abortedBefore + 1);
      eventually("the slot is free", () -> upstream.inFlight() == 0 && inFlight(server) == 0);
      slowestFreeMs = Math.max(slowestFreeMs, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - left));
      tally.failedClearly++;
    }
    Figures.fault(tally.row("client aborts mid-stream", slowestFreeMs,
        "10 streams left after their first event; each seen aborted by the upstream; recovery: slowest slot freed"));
    assertEquals(200, cluster.http.send(cluster.chat(server, "m", false), HttpResponse.BodyHandlers.ofString()).statusCode());
  }

  private int inFlight(Cluster.Server server) {
    try {
      return cluster.state(server).path("workers").get(0).path("in_flight").asInt(-1);
    } catch (Exception e) {
      return -1;
    }
  }
}
