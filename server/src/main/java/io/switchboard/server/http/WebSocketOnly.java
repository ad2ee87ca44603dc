package io.switchboard.server.http;

import io.vertx.core.Handler;
import io.vertx.ext.web.RoutingContext;

/**
 * Stands before a dial-in route: a request that is not a WebSocket upgrade gets 426 at once, naming
 * what the route takes, instead of an upgrade that fails with no answer.
 */
public final class WebSocketOnly implements Handler<RoutingContext> {

  public static final WebSocketOnly INSTANCE = new WebSocketOnly();

  private WebSocketOnly() {}

  @Override
  public void handle(RoutingContext ctx) {
    if ("websocket".equalsIgnoreCase(ctx.request().getHeader("Upgrade"))) {
      ctx.next();
      return;
    }
    ctx.response().putHeader("Upgrade", "websocket");
    new ApiError(426, "invalid_request_error", "upgrade_required",
        ctx.request().path() + " is where agents dial in: it takes a WebSocket upgrade (Upgrade: websocket)").send(ctx.response());
  }
}
