package io.switchboard.server.http;

import io.vertx.core.Handler;
import io.vertx.core.net.SocketAddress;
import io.vertx.ext.web.RoutingContext;
import java.net.InetAddress;
import java.net.UnknownHostException;

/**
 * Checks {@code Authorization: Bearer <key>} against the configured API key. With no key configured
 * the API is open, but only to clients on the loopback interface, so that a server started without
 * a key is never an open gateway on the network.
 */
public final class ApiKeyAuth implements Handler<RoutingContext> {

  private final Secret apiKey;

  public ApiKeyAuth(Secret apiKey) {
    this.apiKey = apiKey;
  }

  @Override
  public void handle(RoutingContext ctx) {
    ApiError refusal = check(ctx);
    if (refusal == null) {
      ctx.next();
    } else {
      refusal.send(ctx.response());
    }
  }

  private ApiError check(RoutingContext ctx) {
    if (apiKey == null) {
      return isLoopback(ctx.request().remoteAddress()) ? null : ApiError.unauthorized(
          "this server has no API key configured, so it only serves clients on its own machine; configure api_key to open it");
    }
    String header = ctx.request().getHeader("Authorization");
    if (header == null || !header.regionMatches(true, 0, "Bearer ", 0, 7)) {
      return ApiError.unauthorized("missing API key: send it as 'Authorization: Bearer <key>'");
    }
    return apiKey.matches(header.substring(7).trim()) ? null : ApiError.unauthorized("invalid API key");
  }

  static boolean isLoopback(SocketAddress address) {
    if (address == null || address.hostAddress() == null) {
      return false;
    }
    try {
      return InetAddress.getByName(address.hostAddress()).isLoopbackAddress();
    } catch (UnknownHostException e) {
      return false;
    }
  }
}
