package io.switchboard.server;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.switchboard.protocol.BuildInfo;
import io.switchboard.server.http.Admission;
import io.switchboard.server.http.ApiError;
import io.switchboard.server.http.ApiException;
import io.switchboard.server.http.ApiKeyAuth;
import io.switchboard.server.http.Secret;
import io.switchboard.server.llm.LlmPlugin;
import io.switchboard.server.system.SystemRoutes;
import io.vertx.core.DeploymentOptions;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.VerticleBase;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The Switchboard hub: one HTTP port for the OpenAI API, worker dial-ins and health, with its
 * plugins mounted on one router. Start it with {@link #start}, drain it with {@link #drain}.
 */
public final class SwitchboardServer {

  private static final Logger log = LoggerFactory.getLogger(SwitchboardServer.class);

  private final Vertx vertx;
  private final ServerConfig config;
  private final Admission admission = new Admission();
  private final LlmPlugin llm;
  private final Router web;
  private String deploymentId;
  private int port;

  private SwitchboardServer(Vertx vertx, ServerConfig config) {
    this.vertx = vertx;
    this.config = config;
    ObjectMapper json = new ObjectMapper();
    this.llm = new LlmPlugin(vertx, config, json);
    this.web = Router.router(vertx);
    web.route().handler(BodyHandler.create(false).setBodyLimit(config.maxBodyBytes()));
    SystemRoutes.mount(web, admission);
    llm.mount(web, new ApiKeyAuth(Secret.ofNullable(config.apiKey())), admission);
    web.route().last().handler(ctx -> ApiError.notFound("no route for " + ctx.request().method() + " " + ctx.request().path())
        .send(ctx.response()));
    web.route().failureHandler(this::failure);
  }

  /** Starts a server on the given Vert.x instance; the future completes once it listens. */
  public static Future<SwitchboardServer> start(Vertx vertx, ServerConfig config) {
    try {
      Files.createDirectories(config.dataDir());
    } catch (IOException e) {
      return Future.failedFuture(new UncheckedIOException("cannot create data directory " + config.dataDir(), e));
    }
    SwitchboardServer server = new SwitchboardServer(vertx, config);
    return server.listen().map(server);
  }

  private Future<Void> listen() {
    HttpServerOptions options = new HttpServerOptions()
        .setHost(config.host())
        .setPort(config.port())
        .setTcpNoDelay(true)
        // Room for bursts of thousands of connections (10,000 streams opened at once in bench/).
        .setAcceptBacklog(8192)
        .setMaxWebSocketFrameSize(config.maxFrameBytes())
        .setMaxWebSocketMessageSize(config.maxFrameBytes());
    AtomicInteger boundPort = new AtomicInteger();
    int instances = Math.max(1, Runtime.getRuntime().availableProcessors());
    return llm.startLocalWorkers()
        .compose(v -> vertx.deployVerticle(() -> new HttpVerticle(options, boundPort), new DeploymentOptions().setInstances(instances)))
        .map(id -> {
          deploymentId = id;
          port = boundPort.get();
          announce();
          return null;
        });
  }

  private void announce() {
    log.info("Switchboard {} listening on http://{}:{} (data in {})", BuildInfo.current().version(), config.host(), port,
        config.dataDir().toAbsolutePath());
    if (config.apiKey() == null) {
      log.warn("no API key configured: the API serves loopback clients only; set api_key (API_KEY, --api-key) to open it");
    }
    if (config.clientKey() == null) {
      log.warn("no client key configured: any worker that can reach this port may dial in; set client_key (CLIENT_KEY, --client-key)");
    }
    config.upstreams().forEach(u -> log.info("local worker serves upstream {} at {}", u.name(), u.url()));
  }

  public int port() {
    return port;
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
      if (done.tryComplete()) {
        log.warn("drain timeout after {}: {} request(s) still in flight", config.drainTimeout(), admission.inFlight());
      }
    });
    admission.drain().onComplete(ar -> {
      vertx.cancelTimer(timer);
      if (done.tryComplete()) {
        log.info("drained: no request in flight");
      }
    });
    return done.future();
  }

  /** Closes the listener and the local worker's connections; requests in flight are cut. */
  public synchronized Future<Void> close() {
    Future<?> undeploy = deploymentId == null ? Future.succeededFuture() : vertx.undeploy(deploymentId);
    deploymentId = null;
    return undeploy.eventually(llm::close).mapEmpty();
  }

  private void failure(RoutingContext ctx) {
    ApiError error;
    if (ctx.failure() instanceof ApiException api) {
      error = api.error();
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
    private final AtomicInteger boundPort;

    HttpVerticle(HttpServerOptions options, AtomicInteger boundPort) {
      this.options = options;
      this.boundPort = boundPort;
    }

    @Override
    public Future<?> start() {
      return vertx.createHttpServer(options).requestHandler(web).listen().onSuccess(s -> boundPort.set(s.actualPort()));
    }
  }
}
