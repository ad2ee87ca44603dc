package io.switchboard.server.llm;

import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.flush.FlushConsolidationHandler;
import io.netty.util.concurrent.EventExecutor;
import io.switchboard.server.ServerConfig;
import io.switchboard.server.auth.Authenticator;
import io.switchboard.server.auth.Scope;
import io.switchboard.server.http.ApiError;
import io.switchboard.server.http.Capability;
import io.switchboard.server.http.Mount;
import io.switchboard.server.http.WebSocketOnly;
import io.switchboard.server.metrics.Metrics;
import io.switchboard.vertx.VertxInternals;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpVersion;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@code llm} capability: workers dial in at {@code /api/llm/connect}, and the OpenAI endpoints
 * ({@code /v1/...} and {@code /api/llm/v1/...}, one implementation) are routed over them
 * ({@link Inference}). The server's own upstreams and GGUF files join as local workers.
 */
public final class LlmPlugin implements Capability {

  private static final Logger log = LoggerFactory.getLogger(LlmPlugin.class);
  private static final String[] API_PREFIXES = {"/v1", "/api/llm/v1"};
  /** The endpoints whose bodies go to a worker untouched; embeddings may be split into batches, so they are not here. */
  private static final List<String> PROXIED_ENDPOINTS = List.of("/chat/completions", "/completions", "/rerank", "/reranking");
  /** Each proxied path under every prefix, to its endpoint. */
  private static final Map<String, String> PROXIED = Arrays.stream(API_PREFIXES)
      .flatMap(prefix -> PROXIED_ENDPOINTS.stream().map(endpoint -> Map.entry(prefix + endpoint, endpoint)))
      .collect(Collectors.toUnmodifiableMap(Map.Entry::getKey, Map.Entry::getValue));
  /** Flushes held back in one turn of an event loop before they go out anyway. */
  private static final int FLUSHES_PER_TURN = 64;

  private final Vertx vertx;
  private final ServerConfig config;
  private final LlmRouter router;
  private final WorkerConnection.Settings connectionSettings;
  private final SilenceWatch silence;
  private final Inference inference;
  private final ModelRoutes models;
  private final LocalWorkers localWorkers;
  private Http1InferenceHandler.Settings inferenceHandler;

  /**
   * @param router the registry and scheduler of workers, shared with whoever else adds workers
   * @param managed models started on demand (managed instances), asked before a request is routed
   * @param metrics where each request is accounted for
   * @param eventLoops how many event loops serve connections: a dialed-in worker may hold a WebSocket on each
   */
  public LlmPlugin(Vertx vertx, ServerConfig config, LlmRouter router, ManagedModels managed, Metrics metrics, int eventLoops) {
    this.vertx = vertx;
    this.config = config;
    this.router = router;
    this.connectionSettings = new WorkerConnection.Settings(config.heartbeatInterval().toMillis(), config.maxFrameBytes(), eventLoops);
    this.silence = new SilenceWatch(vertx, config.requestTimeout());
    this.inference = new Inference(vertx, router, managed, metrics, silence);
    this.models = new ModelRoutes(router, managed);
    this.localWorkers = new LocalWorkers(vertx, config, router);
    metrics.gauge("switchboard.queue.length", "Requests waiting for a free worker slot", router::queued);
    metrics.gaugeRows("switchboard.worker.in.flight", "Requests running on each worker",
        () -> router.workers().stream().map(w -> new Metrics.Row(Map.of("worker", w.id()), router.inFlight(w))).toList());
    metrics.gaugeRows("switchboard.worker.max.concurrency", "How many requests each worker may run at once",
        () -> router.workers().stream().map(w -> new Metrics.Row(Map.of("worker", w.id()), w.maxConcurrency())).toList());
  }

  public LlmRouter router() {
    return router;
  }

  @Override
  public void mount(Mount mount) {
    Router web = mount.web();
    Authenticator.Requirement inferenceKey = mount.auth().require(Scope.INFERENCE);
    this.inferenceHandler = new Http1InferenceHandler.Settings(inference, mount.auth(), mount.limits(), mount.admission(), mount.cors(),
        config.maxBodyBytes());
    Handler<RoutingContext> limits = mount.limits().handler();
    web.get("/api/llm/connect").handler(mount.admission().gate()).handler(WebSocketOnly.INSTANCE)
        .handler(ctx -> connect(ctx, mount.auth()));
    for (String prefix : API_PREFIXES) {
      for (String endpoint : PROXIED_ENDPOINTS) {
        web.post(prefix + endpoint).handler(inferenceKey).handler(limits).handler(mount.admission())
            .handler(ctx -> inference.proxy(ctx, endpoint));
      }
      web.post(prefix + "/embeddings").handler(inferenceKey).handler(limits).handler(mount.admission()).handler(inference::embeddings);
      web.get(prefix + "/models").handler(inferenceKey).handler(models::list);
      web.get(prefix + "/models/*").handler(inferenceKey).handler(models::get);
    }
    web.post("/api/llm/workers/:id/drain").handler(mount.auth().require(Scope.OPERATIONS)).handler(models::drainWorker);
  }

  /** Starts the local workers over the configured upstreams and GGUF files. */
  @Override
  public Future<Void> start() {
    return localWorkers.start();
  }

  @Override
  public Future<Void> stop() {
    silence.close();
    return localWorkers.stop();
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

  private void connect(RoutingContext ctx, Authenticator auth) {
    // The router hands out a wrapped socket; the connection underneath knows its event loop.
    ChannelHandlerContext channel = VertxInternals.channel(ctx.request().connection());
    EventExecutor loop = channel == null ? null : channel.executor();
    ctx.request().toWebSocket()
        .onSuccess(ws -> new WorkerConnection(vertx, ws, loop, router, auth, connectionSettings).start())
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
}
