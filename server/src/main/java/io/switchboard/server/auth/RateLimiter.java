package io.switchboard.server.auth;

import io.switchboard.server.ServerConfig;
import io.switchboard.server.ServerConfig.RateLimits.Limit;
import io.switchboard.server.http.ApiError;
import io.vertx.core.Handler;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.RoutingContext;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BiConsumer;

/**
 * What a person may ask of the OpenAI endpoints per window: requests, counted when they come, and
 * tokens, counted from each answer's {@code usage} when it ends. A person's role sets a limit on
 * all their requests together; an API key may carry a lower one of its own, on the requests made
 * with it. A request past either is refused with 429 and {@code Retry-After}; every person's answer
 * says where they stand in {@code X-RateLimit-Limit}, {@code -Remaining} and {@code -Reset}. The
 * server's own keys and loopback clients have no limit.
 *
 * <p>The counts live in this process, in windows named by who they count: a user's id (a UUID) or
 * an API key's ({@code key_...}); a later issue shares them across replicas behind the same two calls,
 * {@link #admit} and {@link Verdict#book}. They are counted without locks: two requests racing for
 * the last place may both be refused, never both let in.
 */
public final class RateLimiter {

  private static final String KEY = "switchboard.rate-limit";

  /**
   * Where a person stands after a request was counted: {@code limit} and {@code remaining} count
   * requests of the tighter of their limits; {@code resetSeconds} till the window ends.
   */
  public final class Verdict {
    private final boolean allowed;
    private final int limit;
    private final int remaining;
    private final long resetSeconds;
    private final String why;
    private final String person;
    private final String key;

    private Verdict(boolean allowed, int limit, int remaining, long resetSeconds, String why, String person, String key) {
      this.allowed = allowed;
      this.limit = limit;
      this.remaining = remaining;
      this.resetSeconds = resetSeconds;
      this.why = why;
      this.person = person;
      this.key = key;
    }

    public boolean allowed() {
      return allowed;
    }

    /** The headers every answer to the person carries. */
    public void headers(BiConsumer<String, String> put) {
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

    /** Books the tokens the admitted request's answer used, in the windows it was counted in. */
    public void book(long tokens) {
      long now = System.currentTimeMillis();
      if (person != null) {
        current(person, now).tokens.addAndGet(tokens);
      }
      if (key != null) {
        current(key, now).tokens.addAndGet(tokens);
      }
    }

    /** The verdict on the request this context carries, where it has limits. */
    public static Verdict of(RoutingContext ctx) {
      return ctx.get(KEY);
    }
  }

  private static final class Window {
    final long start;
    final AtomicInteger requests = new AtomicInteger();
    final AtomicLong tokens = new AtomicLong();

    Window(long start) {
      this.start = start;
    }
  }

  /** A request counted in one window, or why it was not. */
  private record Count(int limit, int remaining, String refusal) {}

  /** Hears of each request refused, for the operator's metrics. */
  public interface Refusals {
    /**
     * @param limit which limit was reached: {@code role} or {@code api_key}
     * @param role the person's role
     */
    void refused(String limit, String role);
  }

  private final long windowMillis;
  private final Map<String, Limit> byRole;
  private final Refusals refusals;
  private final Map<String, Window> windows = new ConcurrentHashMap<>();
  private final AtomicLong lastSweep = new AtomicLong();

  public RateLimiter(ServerConfig.RateLimits config, Refusals refusals) {
    this.windowMillis = config.window().toMillis();
    this.byRole = config.roles();
    this.refusals = refusals;
  }

  /** Counts a request of {@code principal}; null when it has no limit. */
  public Verdict admit(Principal principal) {
    Limit roleLimit = principal == null || principal.role() == null ? null : byRole.get(principal.role());
    Principal.KeyLimit keyLimit = principal == null ? null : principal.keyLimit();
    if (roleLimit == null && keyLimit == null) {
      return null;
    }
    long now = System.currentTimeMillis();
    // The ids themselves name the windows: their strings, kept with the principal, hash once.
    String person = roleLimit == null ? null : principal.id();
    String key = keyLimit == null ? null : keyLimit.keyId();
    Window personal = person == null ? null : current(person, now);
    Count first = personal == null ? null : count(personal, roleLimit, "your role");
    if (first != null && first.refusal() != null) {
      refusals.refused("role", principal.role());
      return refused(first, personal, now);
    }
    Window keyed = key == null ? null : current(key, now);
    Count second = keyed == null ? null : count(keyed, keyLimit.limit(), "this API key");
    if (second != null && second.refusal() != null) {
      if (personal != null) {
        personal.requests.decrementAndGet();
      }
      refusals.refused("api_key", principal.role());
      return refused(second, keyed, now);
    }
    Count tighter = first == null || (second != null && second.remaining() < first.remaining()) ? second : first;
    Window shown = tighter == first ? personal : keyed;
    return new Verdict(true, tighter.limit(), tighter.remaining(), resetSeconds(shown, now), null, person, key);
  }

  private Verdict refused(Count count, Window window, long now) {
    long reset = resetSeconds(window, now);
    return new Verdict(false, count.limit(), count.remaining(), reset, count.refusal() + "; try again in " + reset + " s", null, null);
  }

  private Count count(Window window, Limit limit, String whose) {
    int requests = limit.requests() == null ? Integer.MAX_VALUE : limit.requests();
    if (limit.tokens() != null && window.tokens.get() >= limit.tokens()) {
      return new Count(requests, Math.max(0, requests - window.requests.get()),
          "you used the " + limit.tokens() + " tokens " + whose + " allows per " + windowMillis / 1000 + " s");
    }
    int made = window.requests.incrementAndGet();
    if (made > requests) {
      window.requests.decrementAndGet();
      return new Count(requests, 0, "you made the " + requests + " requests " + whose + " allows per " + windowMillis / 1000 + " s");
    }
    return new Count(requests, requests - made, null);
  }

  private long resetSeconds(Window window, long now) {
    return Math.max(0, (window.start + windowMillis - now + 999) / 1000);
  }

  private Window current(String name, long now) {
    Window window = windows.get(name);
    if (window != null && now < window.start + windowMillis) {
      return window;
    }
    sweep(now);
    return windows.compute(name, (n, old) -> old == null || now >= old.start + windowMillis ? new Window(now) : old);
  }

  /** Forgets the windows that ended, once a window, so that people who went away cost nothing. */
  private void sweep(long now) {
    long last = lastSweep.get();
    if (now >= last + windowMillis && lastSweep.compareAndSet(last, now)) {
      windows.values().removeIf(window -> now >= window.start + windowMillis);
    }
  }

  /**
   * The router's handler: it counts the request of the principal on the context, refuses it past a
   * limit, and leaves the verdict on the context for the answer's tokens to be booked.
   */
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
        ctx.put(KEY, verdict);
        ctx.next();
      } else {
        verdict.error().send(response);
      }
    };
  }
}
