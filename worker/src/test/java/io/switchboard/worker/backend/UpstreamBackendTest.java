package io.switchboard.worker.backend;

import io.netty.handler.codec.http.HttpHeaders;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.switchboard.protocol.Failures;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class UpstreamBackendTest {

  @Test
  void addsV1OnlyWhenTheUrlHasNoPath() {
    assertEquals("http://127.0.0.1:8081/v1", UpstreamBackend.normalize("http://127.0.0.1:8081"));
    assertEquals("http://127.0.0.1:8081/v1", UpstreamBackend.normalize("http://127.0.0.1:8081/"));
    assertEquals("http://127.0.0.1:8081/v1", UpstreamBackend.normalize("http://127.0.0.1:8081/v1/"));
    assertEquals("http://host/openai/v1", UpstreamBackend.normalize("http://host/openai/v1"));
    assertThrows(IllegalArgumentException.class, () -> UpstreamBackend.normalize("127.0.0.1:8081"));
  }

  /**
   * An upstream that answers the first request of each connection with keep-alive, and closes the
   * connection when a second request arrives on it: what a server does whose keep-alive timeout
   * ends just as the gateway reuses the connection.
   */
  @Test
  void aRequestOnAConnectionTheUpstreamClosedIsTriedOnceMoreOnANewOne() throws Exception {
    AtomicInteger connections = new AtomicInteger();
    Vertx vertx = Vertx.vertx();
    try (ServerSocket upstream = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
      Thread.ofVirtual().start(() -> acceptOneAnswerPerConnection(upstream, connections, false));
      UpstreamBackend backend = new UpstreamBackend(vertx, "http://127.0.0.1:" + upstream.getLocalPort() + "/v1", null,
          List.of("m"), Duration.ofSeconds(5));

      assertEquals("answer 1", call(vertx, backend));
      assertEquals(1, connections.get());
      assertEquals("answer 2", call(vertx, backend), "the second request reused the connection, lost it, and was sent again");
      assertEquals(2, connections.get());
      backend.close().await();
    } finally {
      vertx.close().await();
    }
  }

  /** A slow upstream has the request: sending it again would double its work and the client's wait. */
  @Test
  void aRequestThatTimesOutOnAReusedConnectionIsNotSentAgain() throws Exception {
    AtomicInteger connections = new AtomicInteger();
    Vertx vertx = Vertx.vertx();
    try (ServerSocket upstream = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
      Thread.ofVirtual().start(() -> acceptOneAnswerPerConnection(upstream, connections, true));
      UpstreamBackend backend = new UpstreamBackend(vertx, "http://127.0.0.1:" + upstream.getLocalPort() + "/v1", null,
          List.of("m"), Duration.ofMillis(500));

      assertEquals("answer 1", call(vertx, backend));
      ExecutionException timedOut = assertThrows(ExecutionException.class, () -> call(vertx, backend));
      assertTrue(timedOut.getCause().getMessage().startsWith(Failures.UPSTREAM_UNREACHABLE), timedOut.getCause().getMessage());
      assertEquals(1, connections.get(), "no second connection: the request was not sent again");
      backend.close().await();
    } finally {
      vertx.close().await();
    }
  }

  /** A pool that kept every connection a burst opened would hold the upstream's sockets for good. */
  @Test
  void aConnectionLeftUnusedIsClosedOnceItsKeepTimeIsOver() throws Exception {
    AtomicInteger connections = new AtomicInteger();
    CompletableFuture<Void> closedByGateway = new CompletableFuture<>();
    Vertx vertx = Vertx.vertx();
    try (ServerSocket upstream = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
      Thread.ofVirtual().start(() -> {
        while (!upstream.isClosed()) {
          try {
            Socket socket = upstream.accept();
            int number = connections.incrementAndGet();
            Thread.ofVirtual().start(() -> {
              answerOnce(socket, number, false);
              closedByGateway.complete(null);
            });
          } catch (IOException e) {
            return;
          }
        }
      });
      UpstreamBackend backend = new UpstreamBackend(vertx, "http://127.0.0.1:" + upstream.getLocalPort() + "/v1", null,
          List.of("m"), Duration.ofSeconds(5), Duration.ofMillis(300));

      assertEquals("answer 1", call(vertx, backend));
      closedByGateway.get(10, TimeUnit.SECONDS);
      assertEquals("answer 2", call(vertx, backend), "the next request opens a new connection");
      assertEquals(2, connections.get());
      backend.close().await();
    } finally {
      vertx.close().await();
    }
  }

  /** Runs one call from an event loop, as the server and the worker do, and returns the answer's body. */
  private static String call(Vertx vertx, UpstreamBackend backend) throws Exception {
    CompletableFuture<String> answer = new CompletableFuture<>();
    Buffer body = Buffer.buffer();
    vertx.runOnContext(v -> backend.call(new BackendRequest("POST", "/chat/completions", Map.of("Content-Type", "application/json"),
        false, Buffer.buffer("{}")), new ResponseSink() {
          @Override
          public void head(int status, HttpHeaders headers) {
            assertEquals(200, status);
          }

          @Override
          public void chunk(Buffer data) {
            body.appendBuffer(data);
          }

          @Override
          public void end(Failure failure) {
            if (failure != null) {
              answer.completeExceptionally(new AssertionError(failure.code() + ": " + failure.message()));
            } else {
              answer.complete(body.toString());
            }
          }
        }));
    return answer.get(10, TimeUnit.SECONDS);
  }

  /** Answers the first request of each connection; on a second one, closes the connection or, with {@code hang}, stays silent. */
  private static void acceptOneAnswerPerConnection(ServerSocket server, AtomicInteger connections, boolean hang) {
    while (!server.isClosed()) {
      try {
        Socket socket = server.accept();
        int number = connections.incrementAndGet();
        Thread.ofVirtual().start(() -> answerOnce(socket, number, hang));
      } catch (IOException e) {
        return;
      }
    }
  }

  private static void answerOnce(Socket socket, int number, boolean hang) {
    try (socket) {
      BufferedReader in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.ISO_8859_1));
      readRequest(in);
      String text = "answer " + number;
      OutputStream out = socket.getOutputStream();
      out.write(("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + text.length() + "\r\n\r\n" + text)
          .getBytes(StandardCharsets.ISO_8859_1));
      out.flush();
      // Wait for the next request on this connection, then close it unanswered, or hold it open.
      in.readLine();
      while (hang && in.read() >= 0) {
        // Holding the connection until the client gives up on it.
      }
    } catch (IOException e) {
      // The client went away first: nothing to answer.
    }
  }

  private static void readRequest(BufferedReader in) throws IOException {
    in.readLine();
    int length = 0;
    String line;
    while ((line = in.readLine()) != null && !line.isEmpty()) {
      if (line.regionMatches(true, 0, "Content-Length:", 0, 15)) {
        length = Integer.parseInt(line.substring(15).trim());
      }
    }
    for (int i = 0; i < length; i++) {
      in.read();
    }
  }
}
