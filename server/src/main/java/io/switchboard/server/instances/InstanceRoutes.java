package io.switchboard.server.instances;

import com.fasterxml.jackson.databind.JsonNode;
import io.switchboard.protocol.Json;
import io.switchboard.server.auth.Authenticator;
import io.switchboard.server.auth.Scope;
import io.switchboard.server.http.ApiError;
import io.switchboard.server.http.ApiException;
import io.switchboard.server.http.Capability;
import io.switchboard.server.http.JsonReply;
import io.switchboard.server.http.Mount;
import io.switchboard.vertx.Blocking;
import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.http.RequestOptions;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * The instances API ({@code /api/v1/instances/...}) and the llama-server information endpoints
 * ({@code /api/v1/server/...}). Errors take the flat shape {@code {"error":"..."}} of this API.
 */
public final class InstanceRoutes implements Capability {

  private static final Set<String> HOP_BY_HOP = Set.of("connection", "keep-alive", "transfer-encoding", "te", "trailer",
      "upgrade", "proxy-authorization", "proxy-authenticate", "host", "content-length");
  /** The caller's credentials are for Switchboard; an instance never sees them. */
  private static final Set<String> CREDENTIALS = Set.of("authorization", "x-api-key");

  private final Vertx vertx;
  private final InstanceManager instances;
  private final String llamaServer;
  private final HttpClient proxyClient;

  public InstanceRoutes(Vertx vertx, InstanceManager instances, String llamaServer) {
    this.vertx = vertx;
    this.instances = instances;
    this.llamaServer = llamaServer;
    this.proxyClient = vertx.createHttpClient(new HttpClientOptions().setTcpNoDelay(true).setKeepAlive(true));
  }

  /** Adds the routes, each for whoever may manage. */
  @Override
  public void mount(Mount mount) {
    Router web = mount.web();
    Authenticator.Requirement auth = mount.auth().require(Scope.MANAGEMENT).withPlainErrors();
    String base = "/api/v1/instances";
    web.get(base).handler(auth).handler(ctx -> answer(ctx, 200, instances.views()));
    web.get(base + "/:name").handler(auth).handler(ctx -> answer(ctx, 200, instances.get(name(ctx))));
    web.post(base + "/:name").handler(auth).handler(ctx -> answer(ctx, 201, body(ctx).compose(b -> instances.create(name(ctx), b))));
    web.put(base + "/:name").handler(auth).handler(ctx -> answer(ctx, 200, body(ctx).compose(b -> instances.update(name(ctx), b))));
    web.delete(base + "/:name").handler(auth).handler(ctx -> instances.delete(name(ctx)).onComplete(ar -> {
      if (ar.failed()) {
        fail(ctx, ar.cause());
      } else {
        ctx.response().setStatusCode(204).end();
      }
    }));
    web.post(base + "/:name/start").handler(auth).handler(ctx -> answer(ctx, 200, instances.start(name(ctx))));
    web.post(base + "/:name/stop").handler(auth).handler(ctx -> answer(ctx, 200, instances.stop(name(ctx))));
    web.post(base + "/:name/restart").handler(auth).handler(ctx -> answer(ctx, 200, instances.restart(name(ctx))));
    web.get(base + "/:name/logs").handler(auth).handler(this::logs);
    web.route(base + "/:name/proxy/*").handler(auth).handler(this::proxy);
    web.get("/api/v1/server/help").handler(auth).handler(ctx -> llamaServerInfo(ctx, "--help"));
    web.get("/api/v1/server/version").handler(auth).handler(ctx -> llamaServerInfo(ctx, "--version"));
    web.get("/api/v1/server/devices").handler(auth).handler(ctx -> llamaServerInfo(ctx, "--list-devices"));
  }

  /** Loads the stored instances and starts those marked {@code auto_start}. */
  @Override
  public Future<Void> start() {
    return instances.load();
  }

  /** Stops every instance, and waits until they have ended. */
  @Override
  public Future<Void> stop() {
    return Blocking.<Void>call(vertx, () -> {
      instances.shutdown();
      return null;
    }).eventually(proxyClient::close);
  }

  private static String name(RoutingContext ctx) {
    return ctx.pathParam("name");
  }

  private Future<JsonNode> body(RoutingContext ctx) {
    Buffer body = ctx.body().buffer();
    if (body == null || body.length() == 0) {
      return Future.succeededFuture(Json.MAPPER.createObjectNode());
    }
    try {
      return Future.succeededFuture(Json.MAPPER.readTree(body.getBytes()));
    } catch (IOException e) {
      return Future.failedFuture(new ApiException(ApiError.invalidJson(e.getMessage())));
    }
  }

  private void answer(RoutingContext ctx, int status, Future<?> result) {
    result.onComplete(ar -> {
      if (ar.failed()) {
        fail(ctx, ar.cause());
        return;
      }
      JsonReply.send(ctx.response(), status, ar.result());
    });
  }

  private static void fail(RoutingContext ctx, Throwable failure) {
    ApiException.of(failure).sendPlain(ctx.response());
  }

  private void logs(RoutingContext ctx) {
    String param = ctx.request().getParam("lines");
    int lines;
    try {
      lines = param == null || param.isBlank() ? -1 : Integer.parseInt(param.trim());
    } catch (NumberFormatException e) {
      ApiError.badRequest("lines must be a whole number (-1 for all), got '" + param + "'").sendPlain(ctx.response());
      return;
    }
    instances.logs(name(ctx), lines).onComplete(ar -> {
      if (ar.failed()) {
        fail(ctx, ar.cause());
      } else {
        ctx.response().putHeader("Content-Type", "text/plain; charset=utf-8").end(ar.result());
      }
    });
  }

  /** Forwards any request under {@code .../proxy/} to the running instance, streaming the answer back. */
  private void proxy(RoutingContext ctx) {
    int port;
    try {
      port = instances.runningPort(name(ctx));
    } catch (ApiException e) {
      e.error().sendPlain(ctx.response());
      return;
    }
    HttpServerRequest request = ctx.request();
    String rest = "/" + ctx.pathParam("*");
    String uri = request.query() == null ? rest : rest + "?" + request.query();
    RequestOptions options = new RequestOptions().setMethod(request.method()).setHost("127.0.0.1").setPort(port).setURI(uri)
        .setHeaders(forwardable(request.headers()))
        .putHeader("X-Forwarded-Host", String.valueOf(request.authority()))
        .putHeader("X-Forwarded-Proto", request.scheme());
    Buffer body = ctx.body().buffer();
    HttpServerResponse response = ctx.response();
    proxyClient.request(options)
        .compose(upstream -> body == null ? upstream.send() : upstream.send(body))
        .onSuccess(answer -> {
          response.setStatusCode(answer.statusCode());
          forwardable(answer.headers()).forEach(response::putHeader);
          String length = answer.getHeader("Content-Length");
          if (length != null) {
            response.putHeader("Content-Length", length);
          } else {
            response.setChunked(true);
          }
          answer.pipeTo(response);
        })
        .onFailure(e -> ApiError.upstream("instance_unreachable", "instance '" + name(ctx) + "' did not answer: " + e.getMessage())
            .sendPlain(response));
  }

  private static MultiMap forwardable(MultiMap headers) {
    MultiMap kept = MultiMap.caseInsensitiveMultiMap();
    headers.forEach((name, value) -> {
      String lower = name.toLowerCase();
      if (!HOP_BY_HOP.contains(lower) && !CREDENTIALS.contains(lower)) {
        kept.add(name, value);
      }
    });
    return kept;
  }

  /** Runs the configured llama-server with one informational flag and answers its output as text. */
  private void llamaServerInfo(RoutingContext ctx, String flag) {
    Blocking.<String>call(vertx, () -> run(List.of(llamaServer, flag))).onComplete(ar -> {
      if (ar.failed()) {
        fail(ctx, ar.cause());
      } else {
        ctx.response().putHeader("Content-Type", "text/plain; charset=utf-8").end(ar.result());
      }
    });
  }

  private String run(List<String> command) throws InterruptedException {
    Process process;
    try {
      process = new ProcessBuilder(command).redirectErrorStream(true).start();
    } catch (IOException e) {
      throw new ApiException(ApiError.unavailable("llama_server_not_found", notRunnable(llamaServer)));
    }
    ByteArrayOutputStream output = new ByteArrayOutputStream();
    Thread reader = Thread.ofVirtual().start(() -> {
      try (InputStream in = process.getInputStream()) {
        in.transferTo(output);
      } catch (IOException ignored) {
        // The process ended; what was read is the answer.
      }
    });
    if (!process.waitFor(15, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      throw new ApiException(new ApiError(504, "server_error", "timeout",
          "'" + String.join(" ", command) + "' did not finish within 15 s"));
    }
    reader.join(2_000);
    String text = output.toString(StandardCharsets.UTF_8);
    if (process.exitValue() != 0) {
      throw new ApiException(ApiError.upstream("llama_server_failed", "'" + String.join(" ", command)
          + "' exited with status " + process.exitValue() + ": " + text.strip()));
    }
    return text;
  }

  /**
   * What an operator reads when the llama-server program cannot be run: the setting that names it,
   * in all three of its spellings.
   */
  public static String notRunnable(String program) {
    return "cannot run llama-server as '" + program + "' (not found or not executable); install llama.cpp "
        + "and set llama_server (env LLAMA_SERVER, flag --llama-server) to the llama-server program";
  }
}
