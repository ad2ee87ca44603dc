package io.switchboard.server.llm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.flush.FlushConsolidationHandler;
import io.netty.util.concurrent.EventExecutor;
import io.switchboard.server.ServerConfig;
import io.switchboard.server.http.Admission;
import io.switchboard.server.http.ApiError;
import io.switchboard.server.http.WebSocketOnly;
import io.switchboard.server.http.ApiException;
import io.switchboard.server.http.ApiKeyAuth;
import io.switchboard.server.http.Secret;
import io.switchboard.server.metrics.Metrics;
import io.switchboard.vertx.VertxInternals;
import io.switchboard.worker.backend.BackendCall;
import io.switchboard.worker.backend.BackendRequest;
import io.switchboard.worker.backend.UpstreamBackend;
import io.switchboard.worker.llamacpp.LlamaBackend;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.http.HttpVersion;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Function;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@code llm} plugin: workers dial in at {@code /api/llm/connect}, and the OpenAI endpoints
 * ({@code /v1/...} and {@code /api/llm/v1/...}, one implementation) are routed over them. The
 * server's own upstreams join as a local worker that takes the same routing without a WebSocket hop.
 */
public final class LlmPlugin {

  private static final Logger log = LoggerFactory.getLogger(LlmPlugin.class);
  private static final String[] API_PREFIXES = {"/v1", "/api/llm/v1"};
  static final String REQUEST_ID = "X-Request-Id";
  /** The endpoints whose bodies go to a worker untouched; embeddings may be split into batches, so they are not here. */
  private static final List<String> PROXIED_ENDPOINTS = List.of("/chat/completions", "/completions", "/rerank", "/reranking");
  /** Each proxied path under every prefix, to its endpoint. */
  private static final Map<String, String> PROXIED = Arrays.stream(API_PREFIXES)
      .flatMap(prefix -> PROXIED_ENDPOINTS.stream().map(endpoint -> Map.entry(prefix + endpoint, endpoint)))
      .collect(Collectors.toUnmodifiableMap(Map.Entry::getKey, Map.Entry::getValue));
  /** Flushes held back in one turn of an event loop before they go out anyway. */
  private static final int FLUSHES_PER_TURN = 64;
  /** The status a request is counted with when its client went away first (nginx's convention). */
  private static final int CLIENT_CLOSED = 499;

  private final Vertx vertx;
  private final ServerConfig config;
  private final ObjectMapper json;
  private final LlmRouter router;
  private final ManagedModels managed;
  private final Metrics metrics;
  private final WorkerConnection.Settings connectionSettings;
  private final SilenceWatch silence;
  private final EmbeddingsBatcher batcher;
  private final List<UpstreamBackend> upstreams = new ArrayList<>();
  private long pollTimer = -1;
  private LlamaBackend localModels;
  private Http1InferenceHandler.Settings inferenceHandler;

  /**
   * @param router the registry and scheduler of workers, shared with whoever else adds workers
   * @param managed models started on demand (managed instances), asked before a request is routed
   * @param metrics where each request is accounted for
   * @param eventLoops how many event loops serve connections: a dialed-in worker may hold a WebSocket on each
   */
  public LlmPlugin(Vertx vertx, ServerConfig config, ObjectMapper json, LlmRouter router, ManagedModels managed, Metrics metrics,
      int eventLoops) {
    this.vertx = vertx;
    this.config = config;
    this.json = json;
    this.router = router;
    this.managed = managed;
    this.metrics = metrics;
    this.connectionSettings = new WorkerConnection.Settings(
        Secret.ofNullable(config.clientKey()), config.heartbeatInterval().toMillis(), config.maxFrameBytes(), eventLoops);
    this.silence = new SilenceWatch(vertx, config.requestTimeout());
    this.batcher = new EmbeddingsBatcher(vertx, json, router, silence);
  }

  public LlmRouter router() {
    return router;
  }

  /**
   * Adds the plugin's routes.
   *
   * @param apiAuth checks the caller's API key
   * @param admission counts requests in flight and refuses new ones while the server drains
   */
  public void mount(Router web, ApiKeyAuth apiAuth, Admission admission) {
    this.inferenceHandler = new Http1InferenceHandler.Settings(this, apiAuth, admission, config.maxBodyBytes());
    web.get("/api/llm/connect").handler(admission.gate()).handler(WebSocketOnly.INSTANCE).handler(this::connect);
    for (String prefix : API_PREFIXES) {
      for (String endpoint : PROXIED_ENDPOINTS) {
        web.post(prefix + endpoint).handler(apiAuth).handler(admission).handler(ctx -> proxy(ctx, endpoint));
      }
      web.post(prefix + "/embeddings").handler(apiAuth).handler(admission).handler(this::embeddings);
      web.get(prefix + "/models").handler(apiAuth).handler(this::listModels);
      web.get(prefix + "/models/*").handler(apiAuth).handler(this::getModel);
    }
    web.post("/api/llm/workers/:id/drain").handler(apiAuth).handler(this::drainWorker);
  }

  /** Starts the local worker over the configured upstreams and keeps their model lists fresh. */
  public Future<Void> startLocalWorkers() {
    List<Future<?>> joined = new ArrayList<>();
    List<Runnable> refreshers = new ArrayList<>();
    for (ServerConfig.Upstream upstream : config.upstreams()) {
      UpstreamBackend backend = new UpstreamBackend(vertx, upstream.url(), upstream.apiKey(), upstream.models(),
          config.requestTimeout());
      upstreams.add(backend);
      Worker worker = new Worker("local:" + upstream.name(), upstream.name(), true, backend, List.of(),
          upstream.maxConcurrency(), upstream.embeddingBatchSize());
      router.register(worker);
      Runnable refresh = () -> backend.models()
          .onSuccess(models -> {
            if (!models.equals(worker.models())) {
              router.update(worker, models, null, null);
            }
          })
          .onFailure(e -> log.warn("cannot list models of upstream {}: {}", backend.baseUrl(), e.getMessage()));
      refreshers.add(refresh);
      joined.add(backend.models().onSuccess(models -> router.update(worker, models, null, null))
          .onFailure(e -> log.warn("upstream {} is not answering yet ({}); its models appear once it does",
              backend.baseUrl(), e.getMessage()))
          .otherwiseEmpty());
    }
    if (config.gguf().any()) {
      joined.add(startLocalModels(config.gguf()));
    }
    long every = config.modelPollInterval().toMillis();
    if (!refreshers.isEmpty() && every > 0) {
      pollTimer = vertx.setPeriodic(every, t -> refreshers.forEach(Runnable::run));
    }
    return Future.all(joined).mapEmpty();
  }

  /** Loads the GGUF files and adds them as one more local worker, with as many slots as llama.cpp has. */
  private Future<?> startLocalModels(ServerConfig.LocalModels local) {
    LlamaBackend llama = new LlamaBackend(vertx, new LlamaBackend.Options(local.ctxSize(), local.threads(), local.gpuLayers(),
        local.parallel()));
    localModels = llama;
    Worker worker = new Worker("local:gguf", "gguf", true, llama, List.of(), llama.slots(), 0);
    worker.loading(true);
    router.register(worker);
    return llama.load(local.files().stream().map(Path::of).toList(), local.embedding().stream().map(Path::of).toList())
        .onSuccess(names -> {
          router.update(worker, names, null, null);
          worker.loading(false);
        });
  }

  /**
   * Ends every request still queued or running with a 503 (an error event where the answer had
   * begun), so that a server stopping past its drain timeout tells its clients why.
   */
  public void endInFlight() {
    ApiError stopping = ApiError.unavailable("server_stopping", "the server stopped before this request finished (drain timeout)");
    router.rejectQueued(stopping);
    silence.endAll(stopping);
  }

  public Future<Void> close() {
    silence.close();
    if (localModels != null) {
      localModels.close();
    }
    if (pollTimer >= 0) {
      vertx.cancelTimer(pollTimer);
    }
    return Future.all(upstreams.stream().map(UpstreamBackend::close).toList()).mapEmpty();
  }

  private void connect(RoutingContext ctx) {
    // The router hands out a wrapped socket; the connection underneath knows its event loop.
    ChannelHandlerContext channel = VertxInternals.channel(ctx.request().connection());
    EventExecutor loop = channel == null ? null : channel.executor();
    ctx.request().toWebSocket()
        .onSuccess(ws -> new WorkerConnection(vertx, ws, loop, router, connectionSettings).start())
        .onFailure(e -> log.debug("worker WebSocket upgrade failed: {}", e.getMessage()));
  }

  /**
   * Serves the proxied endpoints of an HTTP/1.1 connection on its Netty pipeline, ahead of the router
   * (see {@link Http1InferenceHandler}); other connections, and every other request, keep to the router.
   */
  public void install(HttpConnection connection) {
    // An h2c upgrade hands over an HTTP/2 connection while its HTTP/1.1 decoder is still in place:
    // the version, not the decoder, says which kind it is.
    ChannelHandlerContext channel = VertxInternals.channel(connection);
    if (inferenceHandler != null && connection.protocolVersion() != HttpVersion.HTTP_2 && channel != null
        && channel.pipeline().get("httpDecoder") != null) {
      ChannelPipeline pipeline = channel.pipeline();
      // Ahead of Vert.x's WebSocket-extension handler, which would only look at our requests and
      // answers and pass them on. Not further up: the connection's first request is already on its
      // way out of the h2c handler, which sits above.
      String next = pipeline.get("webSocketExtensionHandler") != null ? "webSocketExtensionHandler" : "handler";
      pipeline.addBefore(next, "switchboard-inference", new Http1InferenceHandler(inferenceHandler));
      // Answers are written while an upstream's socket is read, not this one: their flushes wait for
      // the end of the loop's turn, so a busy loop sends its answers together and the clients (and,
      // through them, the whole machine) wake up once per turn rather than once per answer.
      pipeline.addFirst("switchboard-answer-flushes", new FlushConsolidationHandler(FLUSHES_PER_TURN, true));
    }
  }

  /**
   * The endpoint ({@code /chat/completions}) of a proxied path ({@code /v1/chat/completions}), or null
   * for every other path.
   */
  static String proxiedEndpoint(String path) {
    return PROXIED.get(path);
  }

  private void proxy(RoutingContext ctx, String path) {
    Buffer body = ctx.body().buffer();
    proxy(ctx, path, body, RequestPeek.of(body));
  }

  private void proxy(RoutingContext ctx, String path, Buffer body, RequestPeek peek) {
    Map<String, String> headers = forwardedHeaders(ctx.request()::getHeader);
    ctx.response().putHeader(REQUEST_ID, headers.get(REQUEST_ID));
    HttpDownstream downstream = new HttpDownstream(ctx.response(), vertx.getOrCreateContext());
    BackendCall routed = route(path, body, peek, headers, downstream);
    downstream.answerFrom(routed);
    ctx.response().closeHandler(v -> routed.cancel());
  }

  /**
   * Routes one request to a worker once its model can take requests (a managed instance may have to
   * start first), whichever edge it came in on. The answer, or why there is none, goes to
   * {@code downstream}.
   *
   * @return the request in flight: cancel it when the client goes away before the answer ends, pause
   *     and resume it as the client's connection fills and drains
   */
  BackendCall route(String path, Buffer body, RequestPeek peek, Map<String, String> headers, Dispatch.Downstream downstream) {
    Routed routed = new Routed(new BackendRequest("POST", path, headers, peek.stream(), body), peek.model(), downstream);
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
    private final Dispatch.Downstream downstream;
    private boolean gone;
    private Dispatch dispatch;
    private Metrics.Request account;

    Routed(BackendRequest request, String model, Dispatch.Downstream downstream) {
      this.request = request;
      this.model = model;
      this.downstream = downstream;
    }

    synchronized void dispatch() {
      if (gone) {
        return;
      }
      account = metrics.start(model, request.path());
      dispatch = new Dispatch(router, silence, model, request, null, new MeteredDownstream(downstream, account));
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

  private void embeddings(RoutingContext ctx) {
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
      request = json.readTree(body.getBytes());
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
    Map<String, String> headers = forwardedHeaders(ctx.request()::getHeader);
    response.putHeader(REQUEST_ID, headers.get(REQUEST_ID));
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
      account.end(answer.status());
      response.setStatusCode(answer.status());
      answer.headers().remove(HttpHeaderNames.CONTENT_LENGTH);
      answer.headers().forEach(header -> response.putHeader(header.getKey(), header.getValue()));
      response.end(answer.body());
    });
  }

  private void listModels(RoutingContext ctx) {
    ObjectNode list = json.createObjectNode().put("object", "list");
    ArrayNode data = list.putArray("data");
    List<ManagedModels.Entry> instances = managed.list();
    instances.forEach(instance -> data.add(instanceJson(instance)));
    router.models().stream()
        .filter(model -> instances.stream().noneMatch(instance -> instance.id().equals(model.id())))
        .forEach(model -> data.add(modelJson(model)));
    sendJson(ctx.response(), list);
  }

  private void getModel(RoutingContext ctx) {
    String id = ctx.pathParam("*");
    managed.list().stream().filter(instance -> instance.id().equals(id)).findFirst().ifPresentOrElse(
        instance -> sendJson(ctx.response(), instanceJson(instance)),
        () -> router.model(id).ifPresentOrElse(
            model -> sendJson(ctx.response(), modelJson(model)),
            () -> ApiError.modelNotFound(id).send(ctx.response())));
  }

  private ObjectNode instanceJson(ManagedModels.Entry instance) {
    return json.createObjectNode()
        .put("id", instance.id())
        .put("object", "model")
        .put("created", instance.created())
        .put("owned_by", "instance")
        .put("status", instance.status());
  }

  private ObjectNode modelJson(LlmRouter.ModelEntry model) {
    ObjectNode node = json.createObjectNode()
        .put("id", model.id())
        .put("object", "model")
        .put("created", model.created())
        .put("owned_by", "worker");
    ArrayNode workers = node.putArray("workers");
    model.workers().forEach(workers::add);
    return node;
  }

  private void drainWorker(RoutingContext ctx) {
    String id = ctx.pathParam("id");
    router.worker(id).ifPresentOrElse(worker -> {
      router.update(worker, null, null, true);
      if (worker.backend() instanceof WorkerConnection connection) {
        connection.drain();
      }
      ctx.response().setStatusCode(202);
      sendJson(ctx.response(), json.createObjectNode().put("id", id).put("status", "draining"));
    }, () -> ApiError.notFound("no worker with id '" + id + "' is connected").send(ctx.response()));
  }

  private void sendJson(HttpServerResponse response, JsonNode body) {
    response.putHeader("Content-Type", "application/json").end(body.toString());
  }

  /**
   * The client's headers a backend may need, never its credentials, which are for this server only;
   * with the request's {@code X-Request-Id}, the client's own or a new one.
   */
  static Map<String, String> forwardedHeaders(Function<String, String> header) {
    String contentType = header.apply("Content-Type");
    String type = contentType == null ? "application/json" : contentType;
    String requestId = header.apply(REQUEST_ID);
    String id = requestId == null ? newRequestId() : requestId;
    String accept = header.apply("Accept");
    String userAgent = header.apply("User-Agent");
    // Immutable maps of the exact size: half the bytes of a HashMap, on every request.
    if (accept == null && userAgent == null) {
      return Map.of("Content-Type", type, REQUEST_ID, id);
    } else if (userAgent == null) {
      return Map.of("Content-Type", type, REQUEST_ID, id, "Accept", accept);
    } else if (accept == null) {
      return Map.of("Content-Type", type, REQUEST_ID, id, "User-Agent", userAgent);
    }
    return Map.of("Content-Type", type, REQUEST_ID, id, "Accept", accept, "User-Agent", userAgent);
  }

  /**
   * A random id in UUID form. Not {@code UUID.randomUUID()}: its one shared SecureRandom is a lock
   * every event loop would contend on for every request, and a request id needs no cryptographic strength.
   */
  private static String newRequestId() {
    ThreadLocalRandom random = ThreadLocalRandom.current();
    return new UUID(random.nextLong(), random.nextLong()).toString();
  }
}
