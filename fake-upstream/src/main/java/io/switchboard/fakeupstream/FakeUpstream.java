package io.switchboard.fakeupstream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vertx.core.DeploymentOptions;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A small OpenAI-compatible server that stands in for llama-server, vLLM and friends in tests and
 * benchmarks. It answers {@code /v1/models}, {@code /v1/chat/completions} (JSON and SSE) and
 * {@code /v1/embeddings} with deterministic content, and it can be slowed down or made to fail.
 *
 * <p>Chat answers are {@code tokens} words {@code "tok0 tok1 ..."}; streamed, one word per chunk every
 * {@code tokenIntervalMs}. A request may set both itself with {@code max_tokens} and
 * {@code fake_interval_ms}, so that one fake serves several benchmark scenarios, and add headers to
 * its answer with {@code fake_headers} (an object), as servers that echo request ids or send CORS
 * headers do. {@code fake_token_bytes} pads each streamed token to that many bytes, for answers of
 * many megabytes. A stream waits while its connection's write queue is full, as a real server's
 * does when its client reads slowly. An embedding of a text is {@code [length, sum of its chars]}, so a caller can check
 * that every vector sits at the index of its input.
 */
public final class FakeUpstream {

  private static final ObjectMapper JSON = new ObjectMapper();

  /** How to behave; change it while running with {@link #behave(Behavior)}. */
  public record Behavior(
      List<String> models,
      int tokens,
      long tokenIntervalMs,
      long firstByteDelayMs,
      int failStatus,
      int dropAfterTokens,
      String apiKey) {

    public static Behavior defaults() {
      return new Behavior(List.of("fake-model"), 8, 0, 0, 0, -1, null);
    }

    public Behavior withModels(String... names) {
      return new Behavior(List.of(names), tokens, tokenIntervalMs, firstByteDelayMs, failStatus, dropAfterTokens, apiKey);
    }

    public Behavior withTokens(int count, long intervalMs) {
      return new Behavior(models, count, intervalMs, firstByteDelayMs, failStatus, dropAfterTokens, apiKey);
    }

    public Behavior withFirstByteDelay(long ms) {
      return new Behavior(models, tokens, tokenIntervalMs, ms, failStatus, dropAfterTokens, apiKey);
    }

    /** Answer every completion request with this HTTP status and an OpenAI error body (0: succeed). */
    public Behavior withFailStatus(int status) {
      return new Behavior(models, tokens, tokenIntervalMs, firstByteDelayMs, status, dropAfterTokens, apiKey);
    }

    /** Close the connection after this many streamed tokens (-1: never). */
    public Behavior withDropAfterTokens(int count) {
      return new Behavior(models, tokens, tokenIntervalMs, firstByteDelayMs, failStatus, count, apiKey);
    }

    /** Require {@code Authorization: Bearer key}. */
    public Behavior withApiKey(String key) {
      return new Behavior(models, tokens, tokenIntervalMs, firstByteDelayMs, failStatus, dropAfterTokens, key);
    }
  }

  private final Vertx vertx;
  private volatile Behavior behavior;
  private HttpServer server;
  private final AtomicInteger completions = new AtomicInteger();
  private final AtomicInteger modelListings = new AtomicInteger();
  private final AtomicInteger aborted = new AtomicInteger();
  private final AtomicInteger inFlight = new AtomicInteger();
  private final AtomicLong streamedTokens = new AtomicLong();
  /** Until then, {@code /health} answers 503 "loading model", as llama-server does while it loads. */
  private volatile long readyAtNanos = System.nanoTime();
  private final List<Integer> embeddingBatchSizes = new CopyOnWriteArrayList<>();
  /**
   * The distinct Authorization headers seen. Not one entry per request: the fake also serves the
   * benchmarks' millions of requests, and a growing copy-on-write list made each request cost more
   * than the last.
   */
  private final Set<String> authorizations = ConcurrentHashMap.newKeySet();
  private volatile JsonNode lastBody;
  /** The last body any fake of this process answered: a fake run as a process is one per core, on one port. */
  private static volatile JsonNode processLastBody;

  public FakeUpstream(Vertx vertx, Behavior behavior) {
    this.vertx = vertx;
    this.behavior = behavior;
  }

  public Future<FakeUpstream> start(int port) {
    return vertx.createHttpServer(new HttpServerOptions().setTcpNoDelay(true).setAcceptBacklog(8192))
        .requestHandler(this::handle)
        .listen(port, "127.0.0.1")
        .map(s -> {
          server = s;
          return this;
        });
  }

  public Future<Void> stop() {
    return server == null ? Future.succeededFuture() : server.close();
  }

  public int port() {
    return server.actualPort();
  }

  /** The OpenAI base URL of this server, {@code http://127.0.0.1:PORT/v1}. */
  public String baseUrl() {
    return "http://127.0.0.1:" + port() + "/v1";
  }

  /** Makes {@code /health} answer 503 for this long from now, like a model server that loads its model. */
  public void loadFor(long millis) {
    readyAtNanos = System.nanoTime() + millis * 1_000_000L;
  }

  public void behave(Behavior next) {
    behavior = next;
  }

  public Behavior behavior() {
    return behavior;
  }

  /** Chat and embedding requests received. */
  public int requests() {
    return completions.get();
  }

  /** {@code GET /v1/models} requests answered. */
  public int modelListings() {
    return modelListings.get();
  }

  /** Requests whose client went away before the answer was complete. */
  public int aborted() {
    return aborted.get();
  }

  public int inFlight() {
    return inFlight.get();
  }

  /** Tokens handed to the connections of streamed answers, all of them together. */
  public long streamedTokens() {
    return streamedTokens.get();
  }

  /** The number of inputs of every embeddings request, in arrival order. */
  public List<Integer> embeddingBatchSizes() {
    return List.copyOf(embeddingBatchSizes);
  }

  /** The distinct Authorization headers requests came with ({@code ""} for none). */
  /** The body of the last request this fake answered: what a gateway in front of it forwarded. */
  public JsonNode lastBody() {
    return lastBody;
  }

  public Set<String> authorizations() {
    return Set.copyOf(authorizations);
  }

  private void handle(HttpServerRequest req) {
    Behavior b = behavior;
    String auth = req.getHeader("Authorization");
    authorizations.add(auth == null ? "" : auth);
    if (b.apiKey() != null && !("Bearer " + b.apiKey()).equals(auth)) {
      FakeAnswers.error(req.response(), 401, "invalid api key", "invalid_request_error");
      return;
    }
    String path = req.path();
    if (req.method().name().equals("GET") && path.equals("/health")) {
      boolean loaded = System.nanoTime() >= readyAtNanos;
      FakeAnswers.json(req.response(), loaded ? 200 : 503, JSON.createObjectNode().put("status", loaded ? "ok" : "loading model"));
      return;
    }
    if (req.method().name().equals("GET") && path.equals("/fake/last-body")) {
      // What the last request carried, for tests that run this fake as another process.
      FakeAnswers.json(req.response(), 200, processLastBody == null ? JSON.createObjectNode() : processLastBody);
      return;
    }
    if (req.method().name().equals("GET") && path.equals("/v1/models")) {
      ArrayNode data = JSON.createArrayNode();
      for (String model : b.models()) {
        data.addObject().put("id", model).put("object", "model").put("created", 1700000000).put("owned_by", "fake");
      }
      ObjectNode list = JSON.createObjectNode().put("object", "list");
      list.set("data", data);
      FakeAnswers.json(req.response(), 200, list);
      modelListings.incrementAndGet();
      return;
    }
    req.body().onSuccess(body -> {
      JsonNode request;
      try {
        request = JSON.readTree(body.getBytes());
      } catch (IOException e) {
        FakeAnswers.error(req.response(), 400, "bad json", "invalid_request_error");
        return;
      }
      lastBody = request;
      processLastBody = request;
      switch (path) {
        case "/v1/chat/completions" -> chat(req, request, b);
        case "/v1/embeddings" -> embeddings(req, request, b);
        case "/v1/rerank", "/v1/reranking" -> rerank(req, request);
        default -> FakeAnswers.error(req.response(), 404, "no route " + path, "invalid_request_error");
      }
    });
  }

  /** Scores each document by its length, so a caller can check the order it gets back. */
  private void rerank(HttpServerRequest req, JsonNode request) {
    completions.incrementAndGet();
    FakeAnswers.json(req.response(), 200, FakeAnswers.rerank(request));
  }

  private void chat(HttpServerRequest req, JsonNode request, Behavior configured) {
    completions.incrementAndGet();
    Behavior b = configured.withTokens(request.path("max_tokens").asInt(configured.tokens()),
        request.path("fake_interval_ms").asLong(configured.tokenIntervalMs()));
    String padding = "x".repeat(Math.max(0, request.path("fake_token_bytes").asInt(0)));
    HttpServerResponse resp = req.response();
    if (b.failStatus() > 0) {
      FakeAnswers.error(resp, b.failStatus(), "fake upstream failure", "server_error");
      return;
    }
    String model = request.path("model").asText("fake-model");
    boolean stream = request.path("stream").asBoolean(false);
    boolean includeUsage = request.path("stream_options").path("include_usage").asBoolean(false);
    request.path("fake_headers").properties().forEach(header -> resp.putHeader(header.getKey(), header.getValue().asText()));
    inFlight.incrementAndGet();
    Exchange exchange = new Exchange(resp);
    resp.closeHandler(v -> exchange.abort());
    vertx.setTimer(Math.max(1, b.firstByteDelayMs()), t -> {
      if (exchange.closed) {
        return;
      }
      if (!stream) {
        StringBuilder text = new StringBuilder();
        for (int i = 0; i < b.tokens(); i++) {
          text.append("tok").append(i).append(i + 1 < b.tokens() ? " " : "");
        }
        ObjectNode answer = FakeAnswers.completion(model, "chat.completion");
        ObjectNode choice = answer.putArray("choices").addObject();
        choice.put("index", 0).put("finish_reason", "stop");
        choice.putObject("message").put("role", "assistant").put("content", text.toString());
        answer.set("usage", FakeAnswers.usage(5, b.tokens()));
        exchange.finish(() -> FakeAnswers.json(resp, 200, answer));
        return;
      }
      resp.setChunked(true).putHeader("Content-Type", "text/event-stream");
      ObjectNode first = FakeAnswers.completion(model, "chat.completion.chunk");
      first.putArray("choices").addObject().put("index", 0).putObject("delta").put("role", "assistant").put("content", "");
      resp.write(FakeAnswers.sse(first));
      streamTokens(exchange, model, b, includeUsage, padding, 0);
    });
  }

  /** Streams tokens from {@code from}: all at once without an interval, else one per timer tick. */
  private void streamTokens(Exchange exchange, String model, Behavior b, boolean includeUsage, String padding, int from) {
    HttpServerResponse resp = exchange.response;
    for (int i = from; !exchange.closed; i++) {
      if (i == b.dropAfterTokens()) {
        exchange.drop();
        return;
      }
      if (i == b.tokens()) {
        ObjectNode last = FakeAnswers.completion(model, "chat.completion.chunk");
        last.putArray("choices").addObject().put("index", 0).put("finish_reason", "stop").putObject("delta");
        resp.write(FakeAnswers.sse(last));
        if (includeUsage) {
          ObjectNode usage = FakeAnswers.completion(model, "chat.completion.chunk");
          usage.putArray("choices");
          usage.set("usage", FakeAnswers.usage(5, b.tokens()));
          resp.write(FakeAnswers.sse(usage));
        }
        exchange.finish(() -> resp.end("data: [DONE]\n\n"));
        return;
      }
      ObjectNode chunk = FakeAnswers.completion(model, "chat.completion.chunk");
      String token = "tok" + i;
      chunk.putArray("choices").addObject().put("index", 0).putObject("delta")
          .put("content", token + padding.substring(Math.min(padding.length(), token.length())) + (i + 1 < b.tokens() ? " " : ""));
      resp.write(FakeAnswers.sse(chunk));
      streamedTokens.incrementAndGet();
      int next = i + 1;
      if (resp.writeQueueFull()) {
        resp.drainHandler(v -> {
          resp.drainHandler(null);
          streamTokens(exchange, model, b, includeUsage, padding, next);
        });
        return;
      }
      if (b.tokenIntervalMs() > 0) {
        vertx.setTimer(b.tokenIntervalMs(), t -> streamTokens(exchange, model, b, includeUsage, padding, next));
        return;
      }
      if (next % 256 == 0) {
        // Thousands of tokens without an interval would hold the event loop, which the fake may
        // share with the server under test; go on in the next turn of the loop.
        vertx.runOnContext(v -> streamTokens(exchange, model, b, includeUsage, padding, next));
        return;
      }
    }
  }

  private void embeddings(HttpServerRequest req, JsonNode request, Behavior b) {
    completions.incrementAndGet();
    if (b.failStatus() > 0) {
      FakeAnswers.error(req.response(), b.failStatus(), "fake upstream failure", "server_error");
      return;
    }
    ObjectNode answer = FakeAnswers.embeddings(request);
    embeddingBatchSizes.add(answer.path("data").size());
    vertx.setTimer(Math.max(1, b.firstByteDelayMs()), t -> FakeAnswers.json(req.response(), 200, answer));
  }

  /** Embedding this server gives a text: what a test compares answers with. */
  public static List<Double> embeddingOf(String text) {
    return List.of((double) text.length(), (double) text.chars().sum());
  }

  private final class Exchange {
    final HttpServerResponse response;
    boolean closed;

    Exchange(HttpServerResponse response) {
      this.response = response;
    }

    void finish(Runnable write) {
      closed = true;
      inFlight.decrementAndGet();
      write.run();
    }

    void drop() {
      closed = true;
      inFlight.decrementAndGet();
      response.reset();
    }

    void abort() {
      if (!closed) {
        closed = true;
        inFlight.decrementAndGet();
        aborted.incrementAndGet();
      }
    }
  }

  /**
   * Runs the fake as its own process: {@code FakeUpstream --port N [--tokens N] [--interval-ms N]
   * [--first-byte-ms N] [--models a,b] [--model PATH] [--load-ms N]}. Prints {@code listening on PORT}
   * once it accepts connections. It takes llama-server's command line, so that it can stand in for one
   * as a managed instance: {@code --model} names its model after the file, {@code --host} is accepted,
   * and the flags it does not know are skipped. The port must be given: the servers of all cores share it.
   */
  public static void main(String[] args) {
    Behavior b = Behavior.defaults();
    int port = 0;
    long loadMs = 0;
    for (int i = 0; i < args.length; i++) {
      boolean hasValue = i + 1 < args.length && !args[i + 1].startsWith("--");
      String value = hasValue ? args[i + 1] : null;
      switch (args[i]) {
        case "--port" -> port = Integer.parseInt(value);
        case "--tokens" -> b = b.withTokens(Integer.parseInt(value), b.tokenIntervalMs());
        case "--interval-ms" -> b = b.withTokens(b.tokens(), Long.parseLong(value));
        case "--first-byte-ms" -> b = b.withFirstByteDelay(Long.parseLong(value));
        case "--models" -> b = b.withModels(value.split(","));
        case "--model" -> b = b.withModels(Path.of(value).getFileName().toString());
        case "--load-ms" -> loadMs = Long.parseLong(value);
        default -> {
          // A llama-server flag this fake does not need.
        }
      }
      if (hasValue) {
        i++;
      }
    }
    if (port <= 0) {
      throw new IllegalArgumentException("--port is required");
    }
    // One server per core on the same port (Vert.x spreads connections), so that in a benchmark the
    // fake is never the bottleneck.
    Behavior behavior = b;
    int listenPort = port;
    long loading = loadMs;
    Vertx vertx = Vertx.vertx();
    vertx.deployVerticle(() -> new VerticleBase() {
          @Override
          public Future<?> start() {
            FakeUpstream fake = new FakeUpstream(vertx, behavior);
            fake.loadFor(loading);
            return fake.start(listenPort);
          }
        }, new DeploymentOptions().setInstances(Runtime.getRuntime().availableProcessors()))
        .onSuccess(id -> System.out.println("listening on " + listenPort))
        .onFailure(e -> {
          e.printStackTrace();
          System.exit(1);
        });
  }
}
