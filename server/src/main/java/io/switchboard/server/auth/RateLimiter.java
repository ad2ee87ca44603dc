package io.switchboard.server.auth;

import io.switchboard.server.ServerConfig;
import io.switchboard.server.http.ApiError;
import io.vertx.core.Handler;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.RoutingContext;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * What a person may ask of the OpenAI endpoints per window, by role: requests, counted when they
 * come, and tokens, counted from each answer's {@code usage} when it ends. A request past either is
 * refused with 429 and {@code Retry-After}; every person's answer says where they stand in
 * {@code X-RateLimit-Limit}, {@code -Remaining} and {@code -Reset}. The server's own keys and
 * loopback clients have no limit. The counts live in this process (a later issue shares them
 * across replicas behind the same two calls: {@link #admit}, {@link #used}).
 */
public final class RateLimiter {

  /** Where a person stands: {@code limit} and {@code remaining} count requests; {@code resetSeconds} till the window ends. */
  public record Verdict(boolean allowed, int limit, int remaining, long resetSeconds, String why) {

    /** The headers every answer to the person carries. */
    public void headers(java.util.function.BiConsumer<String, String> put) {
      put.accept("X-RateLimit-Limit", Integer.toString(limit));
      put.accept("X-RateLimit-Remaining", Integer.toString(remaining));
      put.accept("X-RateLimit-Reset", Long.toString(resetSeconds));
      if (!allowed) {
        put.accept("Retry-After", Long.toString(Math.max(1, resetSeconds)));
      }
    }

    public ApiError error() {
      return new ApiError(429, "rate_limit_exceeded", "rate_limit_exceeded", why);
    }
  }

  private static final class Window {
    final long start;
    int requests;
    long tokens;

    Window(long start) {
      this.start = start;
    }
  }

  private final long windowMillis;
  private final Map<String, ServerConfig.RateLimits.Limit> byRole;
  private final Map<String, Window> windows = new ConcurrentHashMap<>();

  public RateLimiter(ServerConfig.RateLimits config) {
    this.windowMillis = config.window().toMillis();
    this.byRole = config.roles();
  }

  /** Counts a request of {@code principal}; null when it has no limit. */
  public Verdict admit(Principal principal) {
    ServerConfig.RateLimits.Limit limit = principal == null || principal.role() == null ? null : byRole.get(principal.role());
    if (limit == null) {
      return null;
    }
    long now = System.currentTimeMillis();
    Window window = current(principal.id(), now);
    int requests = limit.requests() == null ? Integer.MAX_VALUE : limit.requests();
    long reset = Math.max(0, (window.start + windowMillis - now + 999) / 1000);
    synchronized (window) {
      if (limit.tokens() != null && window.tokens >= limit.tokens()) {
        return new Verdict(false, requests, Math.max(0, requests - window.requests), reset,
            "you used the " + limit.tokens() + " tokens your role may use per " + windowMillis / 1000 + " s; try again in " + reset + " s");
      }
      if (window.requests >= requests) {
        return new Verdict(false, requests, 0, reset,
            "you made the " + requests + " requests your role may make per " + windowMillis / 1000 + " s; try again in " + reset + " s");
      }
      window.requests++;
      return new Verdict(true, requests, requests - window.requests, reset, null);
    }
  }

  /** Books the tokens an answer to {@code principalId} used. */
  public void used(String principalId, long tokens) {
    Window window = current(principalId, System.currentTimeMillis());
    synchronized (window) {
      window.tokens += tokens;
    }
  }

  private Window current(String id, long now) {
    return windows.compute(id, (key, window) -> window == null || now >= window.start + windowMillis ? new Window(now) : window);
  }

  /** The router's handler: it counts the request of the principal on the context, and refuses it past the limit. */
  public Handler<RoutingContext> handler() {
    return ctx -> {
      Verdict verdict = admit(Principal.of(ctx));
      if (verdict == null) {
        ctx.next();
        return;
      }
      HttpServerResponse response = ctx.response();
      verdict.headers(response::putHeader);
      if (verdict.allowed()) {
        ctx.next();
      } else {
        verdict.error().send(response);
      }
    };
  }
}
