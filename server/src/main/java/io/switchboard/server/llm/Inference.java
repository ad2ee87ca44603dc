package io.switchboard.server.llm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.switchboard.protocol.Json;
import io.switchboard.server.auth.RateLimiter;
import io.switchboard.server.http.ApiError;
import io.switchboard.server.http.ApiException;
import io.switchboard.server.metrics.Metrics;
import io.switchboard.worker.backend.BackendCall;
import io.switchboard.worker.backend.BackendRequest;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.RoutingContext;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.function.LongConsumer;

/**
 * The request path of the OpenAI endpoints, whichever edge a request came in on (the router, or
 * {@link Http1InferenceHandler} ahead of it): the model made ready, the request routed to a worker,
 * accounted for, and its answer sent back; embeddings split into batches where workers ask for it.
 */
final class Inference {

  private static final byte[] USAGE_OPTION = "\"stream_options\":{\"include_usage\":true}".getBytes(StandardCharsets.US_ASCII);
  /** The status a request is counted with when its client went away first (nginx's convention). */
  private static final int CLIENT_CLOSED = 499;

  private final Vertx vertx;
  private final LlmRouter router;
  private final ManagedModels managed;
  private final Metrics metrics;
  private final SilenceWatch silence;
  private final EmbeddingsBatcher batcher;

  Inference(Vertx vertx, LlmRouter router, ManagedModels managed, Metrics metrics, SilenceWatch silence) {
    this.vertx = vertx;
    this.router = router;
    this.managed = managed;
    this.metrics = metrics;
    this.silence = silence;
    this.batcher = new EmbeddingsBatcher(vertx, router, silence);
  }

  /** A proxied endpoint's request through the router (HTTP/2, or an HTTP/1.1 request the fast path let by). */
  void proxy(RoutingContext ctx, String endpoint) {
    Buffer body = ctx.body().buffer();
    proxy(ctx, endpoint, body, RequestPeek.of(body));
  }

  private void proxy(RoutingContext ctx, String endpoint, Buffer body, RequestPeek peek) {
    Map<String, String> headers = ForwardedHeaders.of(ctx.request()::getHeader);
    ctx.response().putHeader(ForwardedHeaders.REQUEST_ID, headers.get(ForwardedHeaders.REQUEST_ID));
    HttpDownstream downstream = new HttpDownstream(ctx.response(), vertx.getOrCreateContext());
    RateLimiter.Verdict limits = RateLimiter.Verdict.of(ctx);
    BackendCall routed = route(endpoint, body, peek, headers, limits == null ? null : limits::book, downstream);
    downstream.answerFrom(routed);
    ctx.response().closeHandler(v -> routed.cancel());
  }

  /**
   * Routes one request to a worker once its model can take requests (a managed instance may have to
   * start first). The answer, or why there is none, goes to {@code downstream}.
   *
   * @param tokensUsed where the answer's tokens count against the person's rate limits, or null
   * @return the request in flight: cancel it when the client goes away before the answer ends, pause
   *     and resume it as the client's connection fills and drains
   */
  BackendCall route(String path, Buffer body, RequestPeek peek, Map<String, String> headers, LongConsumer tokensUsed,
      Dispatch.Downstream downstream) {
    // A stream is counted only if its backend sends usage: where the client did not ask for it, the
    // server does, and keeps the answer to itself (MeteredDownstream).
    boolean askForUsage = peek.stream() && !peek.streamOptions() && !path.startsWith("/rerank");
    Routed routed = new Routed(new BackendRequest("POST", path, headers, peek.stream(), askForUsage ? askingForUsage(body) : body),
        peek.model(), askForUsage, tokensUsed, downstream);
    Future<Void> ready = managed.prepare(peek.model());
    if (ready.succeeded()) {
      routed.dispatch();
    } else {
      ready.onComplete(ar -> {
        if (ar.failed()) {
          routed.refuse(ApiException.of(ar.cause()));
        } else {
          routed.dispatch();
        }
      });
    }
    return routed;
  }

  /**
   * One routed request: its dispatch, once its model is ready, what happens when its client leaves,
   * and the client's pauses, which matter only once an answer flows.
   */
  private final class Routed implements BackendCall {
    private final BackendRequest request;
    private final String model;
    private final boolean usageIsOurs;
    private final LongConsumer tokensUsed;
    private final Dispatch.Downstream downstream;
    private boolean gone;
    private Dispatch dispatch;
    private Metrics.Request account;

    Routed(BackendRequest request, String model, boolean usageIsOurs, LongConsumer tokensUsed, Dispatch.Downstream downstream) {
      this.request = request;
      this.model = model;
      this.usageIsOurs = usageIsOurs;
      this.tokensUsed = tokensUsed;
      this.downstream = downstream;
    }

    synchronized void dispatch() {
      if (gone) {
        return;
      }
      account = metrics.start(model, request.path());
      dispatch = new Dispatch(router, silence, model, request, null, new MeteredDownstream(downstream, account, usageIsOurs, tokensUsed));
      dispatch.start();
    }

    synchronized void refuse(ApiError error) {
      if (!gone) {
        downstream.fail(error, false);
      }
    }

    @Override
    public synchronized void cancel() {
      gone = true;
      if (dispatch != null) {
        dispatch.cancel();
        account.end(CLIENT_CLOSED);
      }
    }

    @Override
    public void hold(boolean held) {
      Dispatch running = running();
      if (running != null) {
        running.hold(held);
      }
    }

    /** Read under this lock, called outside it: the answer's writes hold the dispatch's lock when they pause. */
    private synchronized Dispatch running() {
      return dispatch;
    }
  }

  /**
   * The body with {@code "stream_options":{"include_usage":true}} added as its last member. The body
   * has none of its own (RequestPeek), and was read as one JSON object: its last '}' closes it.
   */
  static Buffer askingForUsage(Buffer body) {
    BufferBytes bytes = BufferBytes.of(body);
    byte[] in = bytes.array();
    int close = bytes.end() - 1;
    while (in[close] != '}') {
      close--;
    }
    int before = close - 1;
    while (in[before] == ' ' || in[before] == '\n' || in[before] == '\r' || in[before] == '\t') {
      before--;
    }
    Buffer out = Buffer.buffer(body.length() + USAGE_OPTION.length + 1);
    out.appendBytes(in, bytes.start(), close - bytes.start());
    if (in[before] != '{') {
      out.appendByte((byte) ',');
    }
    return out.appendBytes(USAGE_OPTION).appendBytes(in, close, bytes.end() - close);
  }

  /** {@code POST /v1/embeddings}: proxied whole, or split into batches when its workers take them. */
  void embeddings(RoutingContext ctx) {
    Buffer body = ctx.body().buffer();
    RequestPeek peek = RequestPeek.of(body);
    managed.prepare(peek.model()).onComplete(ar -> {
      if (ctx.response().closed()) {
        return;
      }
      if (ar.failed()) {
        ApiException.of(ar.cause()).send(ctx.response());
      } else {
        embeddings(ctx, body, peek);
      }
    });
  }

  private void embeddings(RoutingContext ctx, Buffer body, RequestPeek peek) {
    List<Worker> serving = router.serving(peek.model());
    if (serving.stream().allMatch(worker -> worker.embeddingBatchSize() == 0)) {
      proxy(ctx, "/embeddings", body, peek);
      return;
    }
    JsonNode request;
    try {
      request = Json.MAPPER.readTree(body.getBytes());
    } catch (IOException e) {
      throw new ApiException(ApiError.invalidJson(e.getMessage()));
    }
    ArrayNode inputs = EmbeddingsBatcher.splittableInputs(request, serving);
    if (inputs == null) {
      proxy(ctx, "/embeddings", body, peek);
      return;
    }
    HttpServerResponse response = ctx.response();
    Metrics.Request account = metrics.start(peek.model(), "/embeddings");
    Map<String, String> headers = ForwardedHeaders.of(ctx.request()::getHeader);
    response.putHeader(ForwardedHeaders.REQUEST_ID, headers.get(ForwardedHeaders.REQUEST_ID));
    EmbeddingsBatcher.Run run = batcher.run(peek.model(), (ObjectNode) request, inputs, headers, serving);
    response.closeHandler(v -> {
      run.cancel();
      account.end(CLIENT_CLOSED);
    });
    run.answer().onComplete(ar -> {
      if (response.closed()) {
        return;
      }
      if (ar.failed()) {
        ApiError error = ApiException.of(ar.cause());
        account.end(error.status());
        error.send(response);
        return;
      }
      EmbeddingsBatcher.Answer answer = ar.result();
      account.tokens(answer.promptTokens(), 0);
      RateLimiter.Verdict limits = RateLimiter.Verdict.of(ctx);
      if (limits != null) {
        limits.book(answer.promptTokens());
      }
      account.end(answer.status());
      response.setStatusCode(answer.status());
      answer.headers().remove(HttpHeaderNames.CONTENT_LENGTH);
      answer.headers().forEach(header -> response.putHeader(header.getKey(), header.getValue()));
      response.end(answer.body());
    });
  }
}
