package io.switchboard.server;

import io.netty.handler.codec.http.TooLongHttpHeaderException;
import io.netty.handler.codec.http.TooLongHttpLineException;
import io.switchboard.protocol.BuildInfo;
import io.switchboard.server.accounts.AccountRoutes;
import io.switchboard.server.auth.Authenticator;
import io.switchboard.server.auth.RateLimiter;
import io.switchboard.server.docs.ApiDocs;
import io.switchboard.server.http.Admission;
import io.switchboard.server.http.ApiError;
import io.switchboard.server.http.ApiException;
import io.switchboard.server.http.Capability;
import io.switchboard.server.http.CorsPolicy;
import io.switchboard.server.http.H2cUpgradeHold;
import io.switchboard.server.http.Mount;
import io.switchboard.server.instances.InstanceManager;
import io.switchboard.server.instances.InstanceRoutes;
import io.switchboard.server.llm.LlmPlugin;
import io.switchboard.server.llm.LlmRouter;
import io.switchboard.server.llm.LlmState;
import io.switchboard.server.mcp.McpPlugin;
import io.switchboard.server.metrics.Metrics;
import io.switchboard.server.metrics.MetricsRoutes;
import io.switchboard.server.state.StateRoutes;
import io.switchboard.server.store.Database;
import io.switchboard.server.system.SystemRoutes;
import io.switchboard.worker.instances.ManagedProcess;
import io.vertx.core.DeploymentOptions;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.VerticleBase;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.ext.web.Route;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The Switchboard hub: one HTTP port for the OpenAI API, worker dial-ins and health, with its
 * plugins mounted on one router. Start it with {@link #start}, drain it with {@link #drain}.
 */
public final class SwitchboardServer {

  private static final Logger log = LoggerFactory.getLogger(SwitchboardServer.class);

  /** One HTTP verticle, and so one event loop, per core. */
  private static final int EVENT_LOOPS = Math.max(1, Runtime.getRuntime().availableProcessors());
  /**
   * Names the random port of each server started on port 0. Verticles that each listened on port 0
   * would get a port apiece, and only one of them would be known; those that listen on the same
   * negative port share one random port (Vert.x), and another server of the same Vert.x picks another.
   */
  private static final AtomicInteger RANDOM_PORTS = new AtomicInteger();

  private final Vertx vertx;
  private final ServerConfig config;
  private final Admission admission = new Admission();
  private final Database database;
  private final LlmPlugin llm;
  private final Router web;
  private final Router metricsWeb;
  /** In the order they start; they stop in the reverse one. */
  private final List<Capability> capabilities;
  private String deploymentId;
  private boolean closed;
  private HttpServer metricsServer;
  private int port;

  private SwitchboardServer(Vertx vertx, ServerConfig config, Database database) {
    this.vertx = vertx;
    this.config = config;
    this.database = database;
    Metrics metrics = new Metrics();
    LlmRouter router = new LlmRouter(vertx, config.queueSize(), config.queueTimeout());
    InstanceManager instances = new InstanceManager(vertx, router, database, config, metrics);
    this.llm = new LlmPlugin(vertx, config, router, instances, metrics, EVENT_LOOPS);
    McpPlugin mcp = new McpPlugin(vertx, config, database, metrics);
    AccountRoutes accounts = new AccountRoutes(vertx, database, config.accounts());
    this.capabilities = List.of(
        new SystemRoutes(),
        new ApiDocs(),
        accounts,
        llm,
        new InstanceRoutes(vertx, instances, config.llamaServer()),
        mcp,
        new MetricsRoutes(metrics, config.modelPrices(), () -> metricsStatus(router, instances)),
        new StateRoutes(vertx, List.of(new LlmState(router, instances, metrics, this::status), mcp)));
    this.web = Router.router(vertx);
    this.metricsWeb = config.metricsPort() == null ? web : Router.router(vertx);
    CorsPolicy cors = new CorsPolicy(config.corsOrigins());
    if (cors.enabled()) {
      web.route().handler(cors.handler());
    }
    web.route().handler(BodyHandler.create(false).setBodyLimit(config.maxBodyBytes()));
    Mount mount = new Mount(web, metricsWeb, new Authenticator(config, accounts.resolvers()), admission,
        new RateLimiter(config.accounts().rateLimits(), (limit, role) -> metrics.count("switchboard.rate.limited",
            "Requests refused past a rate limit, by the limit reached (role or api_key) and the person's role", "limit", limit,
            "role", role)), cors);
    capabilities.forEach(capability -> capability.mount(mount));
    web.route().last().handler(ctx -> ApiError.notFound("no route for " + ctx.request().method() + " " + ctx.request().path())
        .send(ctx.response()));
    web.route().failureHandler(this::failure);
  }

  private MetricsRoutes.Status metricsStatus(LlmRouter router, InstanceManager instances) {
    Map<String, String> models = new TreeMap<>();
    router.models().forEach(model -> models.put(model.id(), "available"));
    instances.list().forEach(instance -> models.put(instance.id(), instance.status()));
    return new MetricsRoutes.Status(admission.draining() ? "draining" : "online", models, router.queued());
  }

  /**
   * Starts a server on the given Vert.x instance; the future completes once it listens. Opening the
   * database blocks, so call it from a thread that may block (main, a test), not an event loop.
   */
  public static Future<SwitchboardServer> start(Vertx vertx, ServerConfig config) {
    Database database;
    try {
      Files.createDirectories(config.dataDir());
      database = Database.open(vertx, config.databaseUrl(), config.dataDir());
    } catch (IOException e) {
      return Future.failedFuture(new UncheckedIOException("cannot create data directory " + config.dataDir(), e));
    } catch (RuntimeException e) {
      return Future.failedFuture(e);
    }
    SwitchboardServer server = new SwitchboardServer(vertx, config, database);
    return server.listen().map(server).onFailure(e -> database.close());
  }

  private Future<Void> listen() {
    HttpServerOptions options = new HttpServerOptions()
        .setHost(config.host())
        .setTcpNoDelay(true)
        // A connection's responses are written on its own event loop only (answers from other
        // threads hop there first: CallerContext), so Vert.x gives it no cross-thread write queue:
        // 4 KiB less heap per open connection, bench/README.md item 36.
        .setStrictThreadMode(true)
        // Room for bursts of thousands of connections (10,000 streams opened at once in bench/).
        .setAcceptBacklog(8192)
        .setMaxWebSocketFrameSize(config.maxFrameBytes())
        .setMaxWebSocketMessageSize(config.maxFrameBytes());
    int listenPort = config.port() == 0 ? -RANDOM_PORTS.incrementAndGet() : config.port();
    AtomicInteger boundPort = new AtomicInteger();
    Future<Void> started = Future.succeededFuture();
    for (Capability capability : capabilities) {
      started = started.compose(v -> capability.start());
    }
    return started
        .compose(v -> listenForMetrics())
        .compose(v -> vertx.deployVerticle(() -> new HttpVerticle(options, listenPort, boundPort), new DeploymentOptions().setInstances(EVENT_LOOPS)))
        .map(id -> {
          deploymentId = id;
          port = boundPort.get();
          announce();
          return null;
        });
  }

  /** The metrics port, when one is configured: a listener of its own that serves only {@code /metrics}. */
  private Future<Void> listenForMetrics() {
    if (config.metricsPort() == null) {
      return Future.succeededFuture();
    }
    return vertx.createHttpServer().requestHandler(metricsWeb).listen(config.metricsPort(), config.host()).map(server -> {
      metricsServer = server;
      log.info("metrics on http://{}:{}/metrics", config.host(), server.actualPort());
      return null;
    });
  }

  /** The port of {@code /metrics} when it has a port of its own. */
  public int metricsPort() {
    return metricsServer == null ? port : metricsServer.actualPort();
  }

  private void announce() {
    log.info("Switchboard {} listening on http://{}:{} (data in {})", BuildInfo.current().version(), config.host(), port,
        config.dataDir().toAbsolutePath());
    if (config.apiKey() == null && config.inferenceKeys().isEmpty() && config.managementKeys().isEmpty()) {
      log.warn("no API key configured: the API serves loopback clients only; set api_key (API_KEY, --api-key) to open it");
    }
    if (config.clientKey() == null) {
      log.warn("no client key configured: any worker that can reach this port may dial in; set client_key (CLIENT_KEY, --client-key)");
    }
    config.upstreams().forEach(u -> log.info("local worker serves upstream {} at {}", u.name(), u.url()));
    if (!ManagedProcess.runnable(config.llamaServer())) {
      log.warn("{}: llama_cpp instances and /api/v1/server/{version,help,devices} answer 503 until then",
          InstanceRoutes.notRunnable(config.llamaServer()));
    }
  }

  public int port() {
    return port;
  }

  /**
   * Every operation this server serves, as {@code METHOD /path} with OpenAPI's {@code {param}}
   * placeholders; {@code ANY} where a route takes every method. What the API document must list.
   */
  public List<String> operations() {
    List<String> operations = new ArrayList<>();
    for (Route route : web.getRoutes()) {
      String path = route.getPath();
      if (path == null) {
        continue;
      }
      String openApiPath = path.replaceAll(":([A-Za-z]+)", "{$1}").replace("*", "{path}");
      if (route.methods() == null || route.methods().isEmpty()) {
        operations.add("ANY " + openApiPath);
      } else {
        route.methods().forEach(method -> operations.add(method.name() + " " + openApiPath));
      }
    }
    return operations.stream().distinct().sorted().toList();
  }

  public LlmPlugin llm() {
    return llm;
  }

  /** {@code ready} with at least one worker, {@code not_ready} without, {@code draining} once draining. */
  public String status() {
    if (admission.draining()) {
      return "draining";
    }
    return llm.router().workers().isEmpty() ? "not_ready" : "ready";
  }

  /**
   * Stops taking new requests and worker connections, and waits (up to the drain timeout) for the
   * requests in flight to finish.
   */
  public Future<Void> drain() {
    log.info("draining: {} request(s) in flight; new requests get 503", admission.inFlight());
    Promise<Void> done = Promise.promise();
    long timer = vertx.setTimer(Math.max(1, config.drainTimeout().toMillis()), t -> {
      log.warn("drain timeout after {}: {} request(s) still in flight end with an error", config.drainTimeout(),
          admission.inFlight());
      llm.endInFlight();
      // Their error events are on their way; the connections close once they are out, or after a second.
      vertx.setTimer(1_000, last -> done.tryComplete());
    });
    admission.drain().onComplete(ar -> {
      if (vertx.cancelTimer(timer)) {
        log.info("drained: no request in flight");
      }
      done.tryComplete();
    });
    return done.future();
  }

  /**
   * Closes the listener and stops the capabilities, last started first (managed instances end,
   * local workers close their connections); requests in flight are cut.
   */
  public synchronized Future<Void> close() {
    if (closed) {
      return Future.succeededFuture();
    }
    closed = true;
    Future<?> undeploy = deploymentId == null ? Future.succeededFuture() : vertx.undeploy(deploymentId);
    deploymentId = null;
    if (metricsServer != null) {
      undeploy = undeploy.eventually(metricsServer::close);
    }
    Future<?> stopped = undeploy;
    for (Capability capability : capabilities.reversed()) {
      stopped = stopped.eventually(capability::stop);
    }
    return stopped
        .eventually(() -> {
          database.close();
          return Future.succeededFuture();
        })
        .mapEmpty();
  }

  private void failure(RoutingContext ctx) {
    ApiError error;
    if (ctx.failure() instanceof ApiException || ctx.failure() != null && Database.unreachable(ctx.failure())) {
      error = ApiException.of(ctx.failure());
    } else if (ctx.statusCode() == 413) {
      error = ApiError.tooLarge(config.maxBodyBytes());
    } else if (ctx.statusCode() == 400) {
      error = ApiError.badRequest("bad request");
    } else {
      log.error("unexpected failure on {} {}", ctx.request().method(), ctx.request().path(), ctx.failure());
      error = ApiError.internal("internal error");
    }
    error.send(ctx.response());
  }

  /** One event loop's share of the listener; Vert.x spreads connections over the instances. */
  private final class HttpVerticle extends VerticleBase {
    private final HttpServerOptions options;
    private final int port;
    private final AtomicInteger boundPort;

    /** {@code port} is the one to listen on: the configured one, or a negative one shared by the verticles. */
    HttpVerticle(HttpServerOptions options, int port, AtomicInteger boundPort) {
      this.options = options;
      this.port = port;
      this.boundPort = boundPort;
    }

    @Override
    public Future<?> start() {
      return vertx.createHttpServer(options)
          .connectionHandler(connection -> {
            H2cUpgradeHold.install(connection);
            llm.install(connection);
          })
          .requestHandler(web)
          .invalidRequestHandler(this::refuseUnreadable)
          .listen(port, options.getHost())
          .onSuccess(s -> boundPort.set(s.actualPort()));
    }

    /**
     * A request the HTTP decoder could not read: Vert.x's status (414, 431 or 400) with a body that
     * says why, in the API's error shape, where Vert.x sends none; the connection then closes.
     */
    private void refuseUnreadable(HttpServerRequest request) {
      Throwable cause = request.decoderResult().cause();
      ApiError error = cause instanceof TooLongHttpLineException
          ? new ApiError(414, "invalid_request_error", "uri_too_long",
              "the request line is longer than " + options.getMaxInitialLineLength() + " bytes")
          : cause instanceof TooLongHttpHeaderException
              ? new ApiError(431, "invalid_request_error", "headers_too_large",
                  "the request's headers are larger than " + options.getMaxHeaderSize() + " bytes")
              : ApiError.badRequest("the request is not valid HTTP/1.1: " + (cause == null ? "unreadable" : cause.getMessage()));
      error.send(request.response());
    }
  }
}
