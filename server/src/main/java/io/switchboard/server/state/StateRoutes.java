package io.switchboard.server.state;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.switchboard.server.auth.Authenticator;
import io.switchboard.server.auth.Scope;
import io.switchboard.server.http.ApiError;
import io.switchboard.server.http.Capability;
import io.switchboard.server.http.Mount;
import io.switchboard.vertx.CallerContext;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Spec 000's state API: {@code GET /api/state} (the envelope {@code {"plugins":{id: state}}}),
 * {@code GET /api/state/stream} (the same as Server-Sent Events), and each plugin's HTML view.
 *
 * <p>The stream is computed once per tick for every watcher, so many watchers cost one JSON
 * rendering and a write each. An envelope goes out when it changed, and at least every
 * {@link #BEAT_MS} so proxies keep the connection open and a new watcher is never kept waiting.
 * Each watcher's event is written on its own connection's context, not the tick's.
 */
public final class StateRoutes implements Capability {

  static final long TICK_MS = 500;
  static final long BEAT_MS = 5_000;

  private final Vertx vertx;
  private final List<StateSource> sources;
  private final Map<HttpServerResponse, Context> watchers = new ConcurrentHashMap<>();
  private String last = "";
  private long lastSent;
  private long timer = -1;

  public StateRoutes(Vertx vertx, List<StateSource> sources) {
    this.vertx = vertx;
    this.sources = List.copyOf(sources);
  }

  private static final String DASHBOARD = StateSource.resource("dashboard.html");

  /**
   * Adds the routes. The dashboard page itself is served to anyone: it holds no data, and asks for
   * the key that the state endpoints it reads need.
   */
  @Override
  public void mount(Mount mount) {
    Router web = mount.web();
    Authenticator.Requirement auth = mount.auth().require(Scope.OPERATIONS);
    web.get("/state").handler(ctx -> ctx.response().putHeader("Content-Type", "text/html; charset=utf-8")
        .putHeader("Cache-Control", "no-store").end(DASHBOARD));
    web.get("/api/state").handler(auth).handler(ctx -> ctx.response().putHeader("Content-Type", "application/json")
        .end(envelope().toString()));
    web.get("/api/state/stream").handler(auth).handler(this::watch);
    web.get("/api/state/view/:file").handler(auth).handler(this::view);
  }

  @Override
  public Future<Void> start() {
    timer = vertx.setPeriodic(TICK_MS, t -> tick());
    return Future.succeededFuture();
  }

  /** Ends every watcher's stream. */
  @Override
  public Future<Void> stop() {
    if (timer >= 0) {
      vertx.cancelTimer(timer);
    }
    watchers.forEach((response, context) -> CallerContext.run(context, () -> {
      if (!response.ended()) {
        response.end();
      }
    }));
    return Future.succeededFuture();
  }

  ObjectNode envelope() {
    ObjectNode envelope = JsonNodeFactory.instance.objectNode();
    ObjectNode plugins = envelope.putObject("plugins");
    sources.forEach(source -> plugins.set(source.id(), source.state()));
    return envelope;
  }

  private void watch(RoutingContext ctx) {
    HttpServerResponse response = ctx.response();
    response.setChunked(true)
        .putHeader("Content-Type", "text/event-stream")
        .putHeader("Cache-Control", "no-store")
        .putHeader("X-Accel-Buffering", "no");
    response.write("retry: 2000\n\n" + event(envelope().toString()));
    watchers.put(response, vertx.getOrCreateContext());
    response.closeHandler(v -> watchers.remove(response));
  }

  private void tick() {
    if (watchers.isEmpty()) {
      return;
    }
    String now = envelope().toString();
    long at = System.currentTimeMillis();
    if (now.equals(last) && at - lastSent < BEAT_MS) {
      return;
    }
    last = now;
    lastSent = at;
    String event = event(now);
    watchers.forEach((watcher, context) -> CallerContext.run(context, () -> {
      if (watcher.closed() || watcher.ended()) {
        watchers.remove(watcher);
      } else if (!watcher.writeQueueFull()) {
        watcher.write(event); // a watcher too slow to keep up skips a beat rather than pile up memory
      }
    }));
  }

  private static String event(String json) {
    return "event: state\ndata: " + json + "\n\n";
  }

  private void view(RoutingContext ctx) {
    String file = ctx.pathParam("file");
    String id = file.endsWith(".html") ? file.substring(0, file.length() - 5) : null;
    String html = sources.stream().filter(s -> s.id().equals(id)).map(StateSource::view).filter(v -> v != null).findFirst()
        .orElse(null);
    if (html == null) {
      ApiError.notFound("no plugin view '" + file + "'").send(ctx.response());
      return;
    }
    ctx.response().putHeader("Content-Type", "text/html; charset=utf-8").end(html);
  }
}
