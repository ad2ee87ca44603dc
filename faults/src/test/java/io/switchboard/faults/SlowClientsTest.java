package io.switchboard.faults;

import static io.switchboard.faults.Cluster.eventually;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.switchboard.fakeupstream.FakeUpstream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A hundred clients that ask for long streams and never read them: the server and the worker hold
 * a bounded amount for each (the upstream is paused instead), and their memory stays flat.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class SlowClientsTest {

  private static final int CLIENTS = 100;

  @RegisterExtension
  final Cluster cluster = new Cluster();

  /** A client that sends its request and then reads nothing, with a receive buffer as small as the kernel allows. */
  private static Socket stalledClient(int port) throws Exception {
    Socket socket = new Socket();
    socket.setReceiveBufferSize(4096);
    socket.connect(new InetSocketAddress("127.0.0.1", port));
    String body = "{\"model\":\"m\",\"stream\":true,\"max_tokens\":1000000,\"fake_interval_ms\":0,\"fake_token_bytes\":1024,"
        + "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    socket.getOutputStream().write(("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + "Content-Length: " + body.length() + "\r\n\r\n" + body).getBytes(StandardCharsets.US_ASCII));
    return socket;
  }

  @Test
  void aHundredClientsThatNeverReadCannotMakeTheServerBufferWithoutBound() throws Exception {
    FakeUpstream upstream = cluster.fake(FakeUpstream.Behavior.defaults().withModels("m"));
    Cluster.Server server = cluster.server();
    Child worker = cluster.worker(server, "solo", upstream.baseUrl(), "--max-concurrency", String.valueOf(CLIENTS + 1));
    eventually("the worker serves m", () -> cluster.servedBy(server, "m", 1));
    for (int i = 0; i < 20; i++) {
      cluster.http.send(cluster.chat(server, "m", true), HttpResponse.BodyHandlers.ofString());
    }
    long serverBefore = server.child().rssKiB();
    long workerBefore = worker.rssKiB();

    List<Socket> clients = new ArrayList<>();
    for (int i = 0; i < CLIENTS; i++) {
      clients.add(stalledClient(server.port()));
    }
    eventually("every stream is at the upstream", () -> upstream.inFlight() == CLIENTS);
    long tokensAtStall = plateau(upstream);
    long serverStalled = server.child().rssKiB();
    long workerStalled = worker.rssKiB();
    Thread.sleep(5_000);
    long tokensLater = upstream.streamedTokens();
    long serverLater = server.child().rssKiB();
    long workerLater = worker.rssKiB();

    clients.forEach(socket -> {
      try {
        socket.close();
      } catch (Exception ignored) {
        // closing is all that is asked
      }
    });
    eventually("every upstream stream was cancelled", () -> upstream.inFlight() == 0 && upstream.aborted() == CLIENTS);
    HttpResponse<String> after = cluster.http.send(cluster.chat(server, "m", false), HttpResponse.BodyHandlers.ofString());
    Tally tally = new Tally();
    tally.sent = CLIENTS + 1;
    tally.failedClearly = CLIENTS;
    tally.count(Tally.judge(after));
    Figures.fault(tally.row("100 clients that never read a stream of 100 MB", -1, String.format(
        "the upstream was paused after %d KiB per stream (most of it in the kernel's socket buffers on the way) and gave nothing more in 5 s; RSS server %d → %d → %d MiB, worker %d → %d → %d MiB "
            + "(before, stalled, 5 s later); each client's leaving cancelled its upstream stream",
        tokensAtStall / CLIENTS, serverBefore >> 10, serverStalled >> 10, serverLater >> 10, workerBefore >> 10, workerStalled >> 10,
        workerLater >> 10)));

    assertTrue(serverStalled - serverBefore < CLIENTS * 2048L, "under 2 MiB of server memory per stalled stream: "
        + serverBefore + " → " + serverStalled + " KiB");
    assertTrue(tokensLater - tokensAtStall < CLIENTS, "the upstream stayed paused: " + tokensAtStall + " → " + tokensLater);
    assertTrue(serverLater - serverStalled < 16 * 1024, "the server's memory stayed flat: " + serverStalled + " → " + serverLater + " KiB");
    assertTrue(workerLater - workerStalled < 16 * 1024, "the worker's memory stayed flat: " + workerStalled + " → " + workerLater + " KiB");
    assertEquals(200, after.statusCode(), after.body());
  }

  /** Waits until the upstream has stopped handing out tokens (every stream paused), and returns how many it gave. */
  private static long plateau(FakeUpstream upstream) throws InterruptedException {
    long last = -1;
    for (int i = 0; i < 100; i++) {
      Thread.sleep(300);
      long now = upstream.streamedTokens();
      if (now == last) {
        return now;
      }
      last = now;
    }
    return last;
  }
}
