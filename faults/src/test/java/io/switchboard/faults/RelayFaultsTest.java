package io.switchboard.faults;

import static io.switchboard.faults.Cluster.JSON;
import static io.switchboard.faults.Cluster.eventually;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/** MCP calls through a relay whose process is killed, or whose MCP server never answers: a JSON-RPC error, in time. */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class RelayFaultsTest {

  @RegisterExtension
  final Cluster cluster = new Cluster();
  private Cluster.Server server;

  @BeforeEach
  void start() throws Exception {
    server = cluster.server("--request-timeout", "3s");
  }

  private Child relay() throws Exception {
    Child relay = cluster.launch("relay", "--server", server.url(), "--client-key", "ck", "--client-id", "sleepy",
        "--reconnect-max", "500ms", "--", Cluster.JAVA, "-Xmx128m", "-Dlogback.configurationFile=logback-stderr.xml",
        "-cp", System.getProperty("java.class.path"), SleepyMcpServer.class.getName());
    eventually("the relay is connected", () -> call("echo", "{\"text\":\"up\"}").join().statusCode() == 200);
    return relay;
  }

  private CompletableFuture<HttpResponse<String>> call(String tool, String arguments) {
    return cluster.http.sendAsync(HttpRequest.newBuilder(server.uri("/api/mcp/id/sleepy")).timeout(Duration.ofSeconds(30))
        .header("Content-Type", "application/json").header("Accept", "application/json, text/event-stream")
        .POST(HttpRequest.BodyPublishers.ofString("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\""
            + tool + "\",\"arguments\":" + arguments + "}}")).build(), HttpResponse.BodyHandlers.ofString());
  }

  /** A JSON-RPC error answering request 7, whatever the HTTP status that carries it. */
  private static boolean jsonRpcError(HttpResponse<String> response) {
    try {
      JsonNode body = JSON.readTree(response.body());
      return body.path("id").asInt() == 7 && body.path("error").has("code") && body.path("error").has("message");
    } catch (Exception e) {
      return false;
    }
  }

  private static Tally judge(List<CompletableFuture<HttpResponse<String>>> calls, long boundSeconds) throws InterruptedException {
    Tally tally = new Tally();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(boundSeconds);
    for (CompletableFuture<HttpResponse<String>> call : calls) {
      tally.sent++;
      try {
        HttpResponse<String> answer = call.get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        if (answer.statusCode() == 200 && !answer.body().contains("\"error\"")) {
          tally.succeeded++;
        } else if (jsonRpcError(answer)) {
          tally.failedClearly++;
        } else {
          tally.lost++;
        }
      } catch (java.util.concurrent.TimeoutException e) {
        tally.hung++;
      } catch (Exception e) {
        tally.lost++;
      }
    }
    return tally;
  }

  @Test
  void callsThroughARelayKilledMidCallEndWithAJsonRpcErrorAndANewRelayServesAgain() throws Exception {
    Child relay = relay();
    List<CompletableFuture<HttpResponse<String>>> calls = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      calls.add(call("slow", "{\"ms\":20000}"));
    }
    Thread.sleep(500);
    long killed = System.nanoTime();
    relay.kill();
    Tally tally = judge(calls, 10);
    long answeredMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - killed);
    relay();
    long recovered = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - killed);
    Figures.fault(tally.row("relay SIGKILL mid-call", recovered, "5 tool calls of 20 s in flight, all answered with a JSON-RPC error "
        + answeredMs + " ms after the kill; recovery: kill to a call served by a new relay process"));

    assertEquals(5, tally.failedClearly, "every call in flight got a JSON-RPC error");
    assertTrue(answeredMs < 5_000, "the errors came at the disconnect, not at a timeout: " + answeredMs + " ms");
  }

  @Test
  void aHangingMcpServerBehindARelayGetsAJsonRpcErrorWithinTheTimeout() throws Exception {
    relay();
    List<CompletableFuture<HttpResponse<String>>> calls = new ArrayList<>();
    long sent = System.nanoTime();
    for (int i = 0; i < 5; i++) {
      calls.add(call("hang", "{}"));
    }
    Tally tally = judge(calls, 15);
    long answeredMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - sent);
    long before = System.nanoTime();
    HttpResponse<String> echo = call("echo", "{\"text\":\"still here\"}").get(10, TimeUnit.SECONDS);
    tally.sent++;
    if (echo.statusCode() == 200 && echo.body().contains("still here")) {
      tally.succeeded++;
    }
    Figures.fault(tally.row("MCP server behind a relay hangs", answeredMs,
        "5 calls to a tool that never answers, request_timeout 3 s: a JSON-RPC error each; then 1 call to another tool, answered in "
            + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - before) + " ms; recovery: send to the last error"));

    assertEquals(5, tally.failedClearly, "every hung call got a JSON-RPC error");
    assertTrue(answeredMs < 8_000, "within the 3 s timeout and a margin: " + answeredMs + " ms");
    assertEquals(1, tally.succeeded, "the relay still serves other calls: " + echo.body());
  }
}
