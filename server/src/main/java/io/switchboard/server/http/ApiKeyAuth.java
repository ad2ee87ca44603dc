package io.switchboard.server.http;

import io.vertx.core.Handler;
import io.vertx.core.http.HttpServerRequest;
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
    HttpServerRequest request = ctx.request();
    return check(request.getHeader("Authorization"), request.getHeader("X-API-Key"),
        accepted.isEmpty() && isLoopback(request.remoteAddress()));
  }

  /**
   * Why a request with these headers is refused, or null when it passes.
   *
   * @param loopbackClient whether the client is on this machine; asked only when no key is configured
   */
  public ApiError check(String authorization, String apiKeyHeader, boolean loopbackClient) {
    if (accepted.isEmpty()) {
      return loopbackClient ? null : ApiError.unauthorized(
          "this server has no key configured for this endpoint, so it only serves clients on its own machine");
    }
    String key = presented(authorization, apiKeyHeader);
    if (key == null) {
      return ApiError.unauthorized("missing API key: send it as 'Authorization: Bearer <key>'");
    }
    boolean matched = false;
    for (Secret secret : accepted) {
      matched |= secret.matches(key); // every key is compared, so the time says nothing about which one matched
    }
    return matched ? null : ApiError.unauthorized("invalid API key");
  }

  private static String presented(String authorization, String apiKey) {
    if (authorization != null && authorization.regionMatches(true, 0, "Bearer ", 0, 7)) {
      return authorization.substring(7).trim();
    }
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
