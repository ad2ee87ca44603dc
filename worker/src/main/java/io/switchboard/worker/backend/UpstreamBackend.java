package io.switchboard.worker.backend;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.netty.channel.EventLoop;
import io.netty.handler.codec.http.HttpHeaders;
import io.switchboard.protocol.Failures;
import io.switchboard.protocol.Json;
import io.switchboard.vertx.CallerContext;
import io.switchboard.vertx.VertxInternals;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A backend that forwards to any OpenAI-compatible server (llama-server, vLLM, Ollama, LM Studio)
 * with a plain HTTP/1.1 request, relaying the answer chunk by chunk.
 *
 * <p>It speaks HTTP on Netty channels of Vert.x's own event loops, with Netty's HTTP codec, rather
 * than through Vert.x's HTTP client: the client's request, stream and future objects per request were
 * a large part of the proxy path's CPU (bench/README.md). Each event loop keeps its own pool of
 * connections ({@link UpstreamPool}), so a request's upstream connection is on the loop that serves
 * its client and only that loop touches them: no lock, no thread handoff.
 */
public final class UpstreamBackend implements Backend {

  private static final ObjectMapper JSON = Json.MAPPER;
  /**
   * How long an unused connection is kept. Upstreams end idle keep-alive connections themselves
   * (llama-server and uvicorn after 5 s), which the pool notices; this bounds the ones that do not.
   */
  static final Duration KEEP_IDLE = Duration.ofSeconds(30);
  private static final Duration MODELS_TIMEOUT = Duration.ofSeconds(10);

  private final UpstreamTarget target;
  private final List<String> fixedModels;
  private final long idleTimeoutNanos;
  private final long keepIdleNanos;
  private final Vertx vertx;
  private final Map<EventLoop, UpstreamPool> loops = new ConcurrentHashMap<>();
  private volatile boolean closed;

  /**
   * @param baseUrl the upstream's OpenAI base URL; {@code /v1} is appended when it has no path
   * @param apiKey sent as {@code Authorization: Bearer} to the upstream, or null
   * @param fixedModels the models to advertise; when empty they are read from the upstream's {@code /models}
   * @param idleTimeout how long the upstream may stay silent during one request
   */
  public UpstreamBackend(Vertx vertx, String baseUrl, String apiKey, List<String> fixedModels, Duration idleTimeout) {
    this(vertx, baseUrl, apiKey, fixedModels, idleTimeout, KEEP_IDLE);
  }

  /** @param keepIdle how long an unused connection is kept */
  UpstreamBackend(Vertx vertx, String baseUrl, String apiKey, List<String> fixedModels, Duration idleTimeout, Duration keepIdle) {
    this.target = UpstreamTarget.of(normalize(baseUrl), apiKey);
    this.fixedModels = List.copyOf(fixedModels);
    this.idleTimeoutNanos = idleTimeout.toNanos();
    this.keepIdleNanos = keepIdle.toNanos();
    this.vertx = vertx;
  }

  static String normalize(String url) {
    String trimmed = url.endsWith("/") ? url.substring(0, url.length() - 1) : url;
    URI uri = URI.create(trimmed);
    if (uri.getScheme() == null || uri.getHost() == null) {
      throw new IllegalArgumentException("upstream URL must be absolute, like http://127.0.0.1:8081/v1: " + url);
    }
    return uri.getPath() == null || uri.getPath().isEmpty() ? trimmed + "/v1" : trimmed;
  }

  public String baseUrl() {
    return target.baseUrl();
  }

  @Override
  public BackendCall call(BackendRequest request, ResponseSink sink) {
    UpstreamCall call = new UpstreamCall(sink);
    if (closed) {
      call.end(new Failure(Failures.UPSTREAM_UNREACHABLE, "upstream " + target.baseUrl() + " is closed"));
      return call;
    }
    // The caller's own loop, so that the answer comes back on it; any loop for other callers.
    EventLoop loop = VertxInternals.callingLoop(vertx);
    UpstreamPool connections = loops.computeIfAbsent(loop, l -> new UpstreamPool(vertx, l, target, idleTimeoutNanos, keepIdleNanos));
    if (loop.inEventLoop()) {
      connections.send(request, call, true);
    } else {
      loop.execute(() -> connections.send(request, call, true));
    }
    return call;
  }

  @Override
  public Future<List<String>> models() {
    if (!fixedModels.isEmpty()) {
      return Future.succeededFuture(fixedModels);
    }
    // Completed on the caller's context, as Vert.x's own client would: the answer is read on a bare Netty loop.
    Promise<List<String>> models = CallerContext.promise(vertx);
    Buffer body = Buffer.buffer();
    int[] status = {0};
    BackendCall call = call(new BackendRequest("GET", "/models", Map.of("Accept", "application/json"), false, Buffer.buffer()),
        new ResponseSink() {
          @Override
          public void head(int code, HttpHeaders headers) {
            status[0] = code;
          }

          @Override
          public void chunk(Buffer data) {
            body.appendBuffer(data);
          }

          @Override
          public void end(Failure failure) {
            if (failure != null) {
              models.tryFail(failure.message());
            } else if (status[0] != 200) {
              models.tryFail("GET " + target.baseUrl() + "/models answered " + status[0]);
            } else {
              try {
                models.tryComplete(modelIds(body.getBytes()));
              } catch (UncheckedIOException e) {
                models.tryFail(e);
              }
            }
          }
        });
    long timer = vertx.setTimer(MODELS_TIMEOUT.toMillis(), t -> {
      call.cancel();
      models.tryFail("GET " + target.baseUrl() + "/models did not answer within " + MODELS_TIMEOUT.toSeconds() + " s");
    });
    return models.future().onComplete(ar -> vertx.cancelTimer(timer));
  }

  private List<String> modelIds(byte[] body) {
    try {
      List<String> ids = new ArrayList<>();
      for (JsonNode model : JSON.readTree(body).path("data")) {
        ids.add(model.path("id").asText());
      }
      return ids;
    } catch (IOException e) {
      throw new UncheckedIOException(target.baseUrl() + "/models is not an OpenAI model list", e);
    }
  }

  @Override
  public Future<Void> close() {
    closed = true;
    List<Future<Void>> closing = new ArrayList<>();
    for (UpstreamPool connections : loops.values()) {
      Promise<Void> done = Promise.promise();
      connections.loop.execute(() -> {
        connections.closeAll();
        done.complete();
      });
      closing.add(done.future());
    }
    return Future.all(closing).mapEmpty();
  }
}
