package io.switchboard.server.llm;

import static io.switchboard.server.llm.TestGateway.chatBody;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.switchboard.fakeupstream.FakeUpstream;
import io.switchboard.server.ServerConfig;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The inference endpoints as an HTTP/1.1 client sees them on the wire: raw sockets, so that what
 * crosses the connection (order, interim answers, closes, a client that stops reading) is what is
 * checked. One HTTP/2 client stops reading too, on the router's path.
 */
class Http1EdgeTest {

  private static final String KEY = "sk-edge";

  private FakeUpstream upstream;
  private TestGateway gateway;

  @BeforeEach
  void start() {
    gateway = TestGateway.start(TestGateway.config(KEY, null, 10, Duration.ofSeconds(5), Duration.ofSeconds(10), List.of()));
    upstream = gateway.fake(FakeUpstream.Behavior.defaults().withTokens(4, 20));
    gateway.worker(upstream);
  }

  @AfterEach
  void stop() {
    gateway.close();
  }

  @Test
  void pipelinedRequestsAreAnsweredInTheOrderTheyCame() throws IOException {
    try (Socket socket = connect()) {
      // A slow chat answer first, then a request the router serves, then a streamed chat answer.
      send(socket, post("/v1/chat/completions", chatBody("fake-model", false), "")
          + "GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY + "\r\n\r\n"
          + post("/api/llm/v1/chat/completions", chatBody("fake-model", true), ""));
      InputStream in = socket.getInputStream();

      Response chat = Response.read(in);
      assertEquals(200, chat.status);
      assertTrue(chat.body.contains("\"chat.completion\""), chat.body);
      Response models = Response.read(in);
      assertEquals(200, models.status);
      assertTrue(models.body.contains("\"object\":\"list\"") && models.body.contains("fake-model"), models.body);
      Response stream = Response.read(in);
      assertEquals(200, stream.status);
      assertTrue(stream.header("content-type").startsWith("text/event-stream"), stream.headers.toString());
      assertTrue(stream.body.contains("data: [DONE]"), stream.body);
    }
  }

  @Test
  void aClientThatExpectsContinueGetsItBeforeSendingTheBody() throws IOException {
    String body = chatBody("fake-model", false);
    try (Socket socket = connect()) {
      send(socket, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY
          + "\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: " + body.length() + "\r\n\r\n");
      InputStream in = socket.getInputStream();
      assertEquals(100, Response.read(in).status, "the interim answer comes before any body byte was sent");
      send(socket, body);
      Response answer = Response.read(in);
      assertEquals(200, answer.status);
      assertNotNull(answer.header("x-request-id"));
    }
  }

  @Test
  void aBodyOverTheLimitIsRefusedWith413AndTheConnectionClosed() throws IOException {
    try (Socket socket = connect()) {
      send(socket, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY
          + "\r\nContent-Type: application/json\r\nContent-Length: " + (2 << 20) + "\r\n\r\n{\"model\":");
      InputStream in = socket.getInputStream();
      Response refused = Response.read(in);
      assertEquals(413, refused.status);
      assertTrue(refused.body.contains("\"type\":\"invalid_request_error\""), refused.body);
      assertEquals(-1, in.read(), "the connection is closed rather than read to the end of the body");
    }
  }

  @Test
  void aBodyWithoutLengthIsCountedAsItArrives() throws IOException {
    String chunk = "x".repeat(64 * 1024);
    try (Socket socket = connect()) {
      StringBuilder request = new StringBuilder("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY
          + "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
      for (int i = 0; i < 17; i++) {
        request.append(Integer.toHexString(chunk.length())).append("\r\n").append(chunk).append("\r\n");
      }
      // The body is not ended: the server must answer as soon as it is over the limit.
      send(socket, request.toString());
      assertEquals(413, Response.read(socket.getInputStream()).status);
    }
  }

  @Test
  void keysAreCheckedBeforeTheBodyIsRead() throws IOException {
    try (Socket socket = connect()) {
      send(socket, post("/v1/chat/completions", chatBody("fake-model", false), "").replace("Bearer " + KEY, "Bearer wrong")
          + post("/v1/rerank", "{\"model\":\"fake-model\",\"query\":\"q\",\"documents\":[\"a\",\"bb\"]}", ""));
      InputStream in = socket.getInputStream();
      Response refused = Response.read(in);
      assertEquals(401, refused.status);
      assertTrue(refused.body.contains("invalid API key"), refused.body);
      Response reranked = Response.read(in);
      assertEquals(200, reranked.status, "a refused request leaves the connection usable");
      assertTrue(reranked.body.contains("\"relevance_score\":2"), reranked.body);
    }
  }

  @Test
  void malformedJsonIsA400ThatNamesTheProblem() throws IOException {
    try (Socket socket = connect()) {
      send(socket, post("/v1/chat/completions", "{\"model\":\"fake-model\",", ""));
      Response refused = Response.read(socket.getInputStream());
      assertEquals(400, refused.status);
      assertTrue(refused.body.contains("\"code\":\"invalid_json\"") || refused.body.contains("invalid"), refused.body);
    }
  }

  @Test
  void connectionCloseIsHonoured() throws IOException {
    try (Socket socket = connect()) {
      send(socket, post("/v1/chat/completions", chatBody("fake-model", true), "Connection: close\r\n"));
      InputStream in = socket.getInputStream();
      Response answer = Response.read(in);
      assertEquals(200, answer.status);
      assertEquals("close", answer.header("connection"));
      assertEquals(-1, in.read(), "the server closes once the answer is out");
    }
  }

  @Test
  void aDialedInWorkersAnswerKeepsTheBackendsHeadersLessHopByHopOnes() throws IOException {
    assertRelayedHeaders(gateway);
  }

  @Test
  void aLocalWorkersAnswerKeepsTheBackendsHeadersLessHopByHopOnes() throws IOException {
    try (TestGateway local = localGateway(Duration.ofSeconds(10))) {
      assertEquals("local:edge", assertRelayedHeaders(local));
    }
  }

  /** A gateway whose own local worker serves the fake. */
  private TestGateway localGateway(Duration requestTimeout) {
    return TestGateway.start(TestGateway.config(KEY, null, 10, Duration.ofSeconds(5), requestTimeout,
        List.of(new ServerConfig.Upstream("edge", upstream.baseUrl(), null, null, 2, 0))));
  }

  /** The backend echoes a request id and sends CORS headers, as vLLM and llama-server can; returns the worker that answered. */
  private static String assertRelayedHeaders(TestGateway target) throws IOException {
    String body = "{\"model\":\"fake-model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"fake_headers\":"
        + "{\"X-Request-Id\":\"upstream-id\",\"Access-Control-Allow-Origin\":\"*\",\"X-Upstream\":\"kept\"}}";
    try (Socket socket = connect(target)) {
      send(socket, post("/v1/chat/completions", body, "X-Request-Id: client-id\r\n"));
      Response answer = Response.read(socket.getInputStream());
      assertEquals(200, answer.status, answer.body);
      assertEquals("kept", answer.header("x-upstream"), answer.headers.toString());
      assertEquals("client-id", answer.header("x-request-id"), "the gateway's request id, once: " + answer.headers);
      assertNull(answer.header("access-control-allow-origin"), answer.headers.toString());
      assertTrue(answer.body.contains("\"chat.completion\""), answer.body);
      return answer.header("x-switchboard-worker");
    }
  }

  @Test
  void aClientThatStopsReadingHoldsTheAnswerBackAtADialedInWorkersUpstream() throws IOException {
    try (TestGateway slow = TestGateway.start(TestGateway.config(KEY, null, 10, Duration.ofSeconds(5), Duration.ofSeconds(5), List.of()))) {
      slow.worker(upstream);
      assertAnswerWaitsForTheClient(slow);
    }
  }

  @Test
  void aCongestedLinkFromTheWorkerHoldsTheAnswerBackAtItsUpstream() throws IOException {
    // Heartbeats wait on the stalled link too: at 5 s apart, the server keeps the worker meanwhile.
    ServerConfig config = TestGateway.config(KEY, null, 10, Duration.ofSeconds(5), Duration.ofSeconds(10), List.of(),
        Duration.ofSeconds(5));
    try (TestGateway far = TestGateway.start(config); NetworkLink link = new NetworkLink(far)) {
      far.worker(upstream, link::dialedBy);
      long before = upstream.streamedTokens();
      link.carry(false);
      try (Socket socket = connect(far)) {
        send(socket, post("/v1/chat/completions", bigStreamBody(), ""));

        assertHeldBack(before, "a worker that could not send them on");

        link.carry(true);
        assertEveryEventArrives(socket, before);
      }
    }
  }

  @Test
  void aClientThatStopsReadingHoldsTheAnswerBackAtALocalWorkersUpstream() throws IOException {
    try (TestGateway local = localGateway(Duration.ofSeconds(5))) {
      assertAnswerWaitsForTheClient(local);
    }
  }

  @Test
  void anHttp2ClientThatStopsReadingHoldsTheAnswerBackToo() {
    try (TestGateway local = localGateway(Duration.ofSeconds(5))) {
      // HTTP/2 goes through the router (HttpDownstream), whose write queue fills with the stream's window.
      HttpClient client = local.vertx.createHttpClient(new HttpClientOptions()
          .setProtocolVersion(HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false));
      long before = upstream.streamedTokens();
      EventCounter events = new EventCounter();
      HttpClientResponse response = client.request(HttpMethod.POST, local.server.port(), "127.0.0.1", "/v1/chat/completions")
          .compose(request -> request.putHeader("Authorization", "Bearer " + KEY).putHeader("Content-Type", "application/json")
              .send(bigStreamBody()))
          .map(arrived -> arrived.pause().handler(data -> events.accept(data.getBytes()))) // before its first byte is delivered
          .await();
      assertEquals(HttpVersion.HTTP_2, response.version());

      assertHeldBack(before, "an HTTP/2 client that read none");

      response.resume();
      response.end().await();
      assertEquals(BIG_STREAM_TOKENS + 3, events.count(), "the role event, every token, the finish event and [DONE]");
      client.close().await();
    }
  }

  @Test
  void aClientThatTakesNothingForTheRequestTimeoutLosesTheRequestAndItsSlot() throws IOException {
    try (TestGateway local = localGateway(Duration.ofSeconds(1))) {
      int abortedBefore = upstream.aborted();
      try (Socket socket = new Socket()) {
        socket.setReceiveBufferSize(16 * 1024);
        socket.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), local.server.port()));
        socket.setSoTimeout(10_000);
        send(socket, post("/v1/chat/completions", bigStreamBody(), ""));
        LlmRouter router = local.server.llm().router();
        Worker worker = router.workers().getFirst();
        TestGateway.eventually("the answer is paused, holding its slot", () -> router.inFlight(worker) == 1);
        TestGateway.eventually("the server gave up on a client that took nothing for a second",
            () -> upstream.aborted() > abortedBefore && router.inFlight(worker) == 0);
      }
      assertEquals(0, upstream.inFlight(), "nothing is left running at the upstream");
    }
  }

  private static final int BIG_STREAM_TOKENS = 12_000;

  /** 4 KiB a token, right away. */
  private static String bigStreamBody() {
    return "{\"model\":\"fake-model\",\"stream\":true,\"max_tokens\":" + BIG_STREAM_TOKENS
        + ",\"fake_interval_ms\":0,\"fake_token_bytes\":4096,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
  }

  /**
   * A streamed answer of 48 MiB, several times what the socket buffers between the backend and the
   * client hold, to a client that reads nothing for a while: the backend's stream must stall rather
   * than the server take it all into memory, and stay stalled. Then the client reads, within the
   * request timeout, and every token arrives.
   */
  private void assertAnswerWaitsForTheClient(TestGateway target) throws IOException {
    long before = upstream.streamedTokens();
    try (Socket socket = new Socket()) {
      socket.setReceiveBufferSize(16 * 1024);
      socket.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), target.server.port()));
      socket.setSoTimeout(10_000);
      send(socket, post("/v1/chat/completions", bigStreamBody(), ""));

      assertHeldBack(before, "a client that read none");

      assertEveryEventArrives(socket, before);
    }
  }

  /** Reads the big stream's answer off the socket to its end: nothing of it was lost while it waited. */
  private void assertEveryEventArrives(Socket socket, long streamedBefore) throws IOException {
    InputStream in = socket.getInputStream();
    assertEquals("HTTP/1.1 200 OK", Response.line(in));
    while (!Response.line(in).isEmpty()) {
      continue;
    }
    assertEquals(BIG_STREAM_TOKENS + 3, eventsUntilTheEnd(in), "the role event, every token, the finish event and [DONE]");
    assertEquals(BIG_STREAM_TOKENS, upstream.streamedTokens() - streamedBefore);
  }

  /**
   * The big stream stalls at the backend below half its tokens, counted from {@code streamedBefore},
   * and stays stalled for 1.5 s.
   */
  private void assertHeldBack(long streamedBefore, String reader) {
    long stalledAt = awaitStall() - streamedBefore;
    assertTrue(stalledAt < BIG_STREAM_TOKENS / 2,
        "the backend wrote " + stalledAt + " of " + BIG_STREAM_TOKENS + " tokens to " + reader);
    sleep(1_500);
    assertEquals(stalledAt, upstream.streamedTokens() - streamedBefore, "still held back");
  }

  /** Waits until the fake's streams have not moved for 600 ms; returns the tokens they had written. */
  private long awaitStall() {
    long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
    long last = -1;
    int still = 0;
    while (still < 3) {
      assertTrue(System.nanoTime() < deadline, "the backend's stream never stalled");
      sleep(200);
      long now = upstream.streamedTokens();
      still = now == last ? still + 1 : 0;
      last = now;
    }
    return last;
  }

  /** Counts the server-sent events of a chunked body up to its last chunk, without keeping the body. */
  private static int eventsUntilTheEnd(InputStream in) throws IOException {
    EventCounter events = new EventCounter();
    for (int size = Integer.parseInt(Response.line(in), 16); size > 0; size = Integer.parseInt(Response.line(in), 16)) {
      events.accept(in.readNBytes(size));
      Response.line(in);
    }
    return events.count();
  }

  /** Counts {@code data: } fields in a stream that arrives in pieces, which may split one. */
  private static final class EventCounter {
    private static final byte[] MARKER = "data: ".getBytes(StandardCharsets.US_ASCII);
    private int matched;
    private int events;

    void accept(byte[] bytes) {
      for (byte b : bytes) {
        matched = b == MARKER[matched] ? matched + 1 : (b == MARKER[0] ? 1 : 0);
        if (matched == MARKER.length) {
          events++;
          matched = 0;
        }
      }
    }

    int count() {
      return events;
    }
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  @Test
  void aWorkerCanStillDialInAfterInferenceOnTheSamePort() {
    FakeUpstream second = gateway.fake(FakeUpstream.Behavior.defaults().withModels("second-model"));
    gateway.worker(second);
    assertEquals(200, gateway.post("/v1/chat/completions", chatBody("second-model", false), "Authorization", "Bearer " + KEY)
        .statusCode());
  }

  private Socket connect() throws IOException {
    return connect(gateway);
  }

  private static Socket connect(TestGateway target) throws IOException {
    Socket socket = new Socket(InetAddress.getLoopbackAddress(), target.server.port());
    socket.setSoTimeout(10_000);
    return socket;
  }

  private static String post(String path, String body, String extraHeaders) {
    return "POST " + path + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY + "\r\nContent-Type: application/json\r\n"
        + extraHeaders + "Content-Length: " + body.getBytes(StandardCharsets.UTF_8).length + "\r\n\r\n" + body;
  }

  private static void send(Socket socket, String text) throws IOException {
    OutputStream out = socket.getOutputStream();
    out.write(text.getBytes(StandardCharsets.UTF_8));
    out.flush();
  }

  /** One HTTP/1.1 response read off the socket: by its length, in chunks, or (1xx) head only. */
  private record Response(int status, Map<String, String> headers, String body) {

    String header(String name) {
      return headers.get(name.toLowerCase(Locale.ROOT));
    }

    static Response read(InputStream in) throws IOException {
      String statusLine = line(in);
      int status = Integer.parseInt(statusLine.split(" ")[1]);
      Map<String, String> headers = new TreeMap<>();
      for (String line = line(in); !line.isEmpty(); line = line(in)) {
        int colon = line.indexOf(':');
        headers.merge(line.substring(0, colon).trim().toLowerCase(Locale.ROOT), line.substring(colon + 1).trim(),
            (first, next) -> first + ", " + next);
      }
      if (status < 200) {
        return new Response(status, headers, "");
      }
      ByteArrayOutputStream body = new ByteArrayOutputStream();
      if ("chunked".equalsIgnoreCase(headers.get("transfer-encoding"))) {
        for (int size = Integer.parseInt(line(in), 16); size > 0; size = Integer.parseInt(line(in), 16)) {
          body.write(in.readNBytes(size));
          line(in);
        }
        line(in);
      } else {
        body.write(in.readNBytes(Integer.parseInt(headers.getOrDefault("content-length", "0"))));
      }
      return new Response(status, headers, body.toString(StandardCharsets.UTF_8));
    }

    static String line(InputStream in) throws IOException {
      StringBuilder line = new StringBuilder();
      for (int c = in.read(); c != '\n'; c = in.read()) {
        if (c < 0) {
          throw new IOException("connection closed mid-response after: " + line);
        }
        if (c != '\r') {
          line.append((char) c);
        }
      }
      return line.toString();
    }
  }
}
