package io.switchboard.server.http;

import io.vertx.core.Handler;
import io.vertx.core.net.SocketAddress;
import io.vertx.ext.web.RoutingContext;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.List;

/**
 * Checks the key a client sends ({@code Authorization: Bearer <key>}, or {@code X-API-Key: <key>})
 * against the keys this endpoint accepts. With no key configured the endpoint is open, but only to
 * clients on the loopback interface, so that a server started without a key is never an open
 * gateway on the network.
 */
public final class ApiKeyAuth implements Handler<RoutingContext> {

  private final List<Secret> accepted;
  private final boolean plainErrors;

  /**
   * @param accepted the keys that pass; none: loopback clients pass
   * @param plainErrors answer 401 as {@code {"error":"..."}} (the instances API) instead of the OpenAI shape
   */
  public ApiKeyAuth(List<Secret> accepted, boolean plainErrors) {
    this.accepted = List.copyOf(accepted);
    this.plainErrors = plainErrors;
  }

  @Override
  public void handle(RoutingContext ctx) {
    ApiError refusal = check(ctx);
    if (refusal == null) {
      ctx.next();
    } else if (plainErrors) {
      refusal.sendPlain(ctx.response());
    } else {
      refusal.send(ctx.response());
    }
  }

  private ApiError check(RoutingContext ctx) {
    if (accepted.isEmpty()) {
      return isLoopback(ctx.request().remoteAddress()) ? null : ApiError.unauthorized(
          "this server has no key configured for this endpoint, so it only serves clients on its own machine");
    }
    String key = presented(ctx);
    if (key == null) {
      return ApiError.unauthorized("missing API key: send it as 'Authorization: Bearer <key>'");
    }
    boolean matched = false;
    for (Secret secret : accepted) {
      matched |= secret.matches(key); // every key is compared, so the time says nothing about which one matched
    }
    return matched ? null : ApiError.unauthorized("invalid API key");
  }

  private static String presented(RoutingContext ctx) {
    String header = ctx.request().getHeader("Authorization");
    if (header != null && header.regionMatches(true, 0, "Bearer ", 0, 7)) {
      return header.substring(7).trim();
    }
    String apiKey = ctx.request().getHeader("X-API-Key");
    return apiKey == null || apiKey.isBlank() ? null : apiKey.trim();
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
