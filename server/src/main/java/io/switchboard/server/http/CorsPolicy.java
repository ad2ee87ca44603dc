package io.switchboard.server.http;

import io.vertx.core.Handler;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.RoutingContext;
import java.util.List;
import java.util.Set;
import java.util.function.BiConsumer;

/**
 * Which web pages may call the API from a browser ({@code cors_origins}): a web app served from
 * another origin (Jan's, a team's own) signs in, chats and lists its conversations here. The same
 * answer on both edges: {@link #handler} on the router, {@link #headers} on the HTTP/1.1 fast path.
 * Credentials travel as bearer tokens, never as cookies, so no answer allows credentials, and
 * {@code *} may stand for every origin.
 */
public final class CorsPolicy {

  private static final String METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
  private static final String EXPOSED = "X-Request-Id, X-Switchboard-Worker, X-Auth-Method, X-RateLimit-Limit, X-RateLimit-Remaining, "
      + "X-RateLimit-Reset, Retry-After";
  /** How long a browser may keep a preflight's answer, in seconds. */
  private static final String MAX_AGE = "600";

  private final boolean anyOrigin;
  private final Set<String> origins;

  /** @param origins exact origins ({@code https://chat.example.com}), or {@code *}; none turns CORS off */
  public CorsPolicy(List<String> origins) {
    this.anyOrigin = origins.contains("*");
    this.origins = Set.copyOf(origins);
  }

  public boolean enabled() {
    return anyOrigin || !origins.isEmpty();
  }

  /**
   * Puts the headers that let a page of {@code origin} read the answer; nothing for a request
   * without an {@code Origin} header or from an origin not allowed.
   */
  public void headers(String origin, BiConsumer<String, String> put) {
    if (origin == null || !(anyOrigin || origins.contains(origin))) {
      return;
    }
    put.accept("Access-Control-Allow-Origin", anyOrigin ? "*" : origin);
    put.accept("Access-Control-Expose-Headers", EXPOSED);
    if (!anyOrigin) {
      put.accept("Vary", "Origin");
    }
  }

  /**
   * The router's handler, first on every route: it answers a browser's preflight (204, or 403 for
   * an origin not allowed) and puts the headers on every other answer to an allowed origin.
   */
  public Handler<RoutingContext> handler() {
    return ctx -> {
      HttpServerRequest request = ctx.request();
      String origin = request.getHeader("Origin");
      if (origin == null) {
        ctx.next();
        return;
      }
      HttpServerResponse response = ctx.response();
      headers(origin, response::putHeader);
      String preflight = request.getHeader("Access-Control-Request-Method");
      if (request.method() != HttpMethod.OPTIONS || preflight == null) {
        ctx.next();
      } else if (!response.headers().contains("Access-Control-Allow-Origin")) {
        ApiError.forbidden("origin " + origin + " is not among cors_origins").send(response);
      } else {
        String asked = request.getHeader("Access-Control-Request-Headers");
        response.putHeader("Access-Control-Allow-Methods", METHODS)
            .putHeader("Access-Control-Allow-Headers", asked == null ? "Authorization, Content-Type, X-API-Key" : asked)
            .putHeader("Access-Control-Max-Age", MAX_AGE)
            .setStatusCode(204).end();
      }
    };
  }
}
