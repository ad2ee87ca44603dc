package io.switchboard.server.auth;

import io.switchboard.server.ServerConfig;
import io.vertx.ext.web.RoutingContext;
import java.util.EnumSet;
import java.util.Set;

/**
 * Who a request comes from, resolved once from what it carries, and what it may do. Handlers read
 * it from the request's context ({@link #of}); they never look at credentials themselves.
 *
 * @param id a stable name for logs and accounting, never the credential itself: a user's id for a person
 * @param via how it authenticated
 * @param scopes what it may do
 * @param session the sign-in a token belongs to (revoking it refuses the token at once), or null
 * @param role a person's role for rate limits ({@code guest}, {@code user}, {@code admin}); null for the server's own
 * @param keyLimit the rate limit of the API key the request came with, where it has one of its own; else null
 */
public record Principal(String id, Via via, Set<Scope> scopes, String session, String role, KeyLimit keyLimit) {

  /** An API key's own rate limit, on top of its owner's role's. */
  public record KeyLimit(String keyId, ServerConfig.RateLimits.Limit limit) {}

  /** How a principal proved who it is. */
  public enum Via {
    /** A key from the server's configuration ({@code api_key}, {@code inference_keys}, {@code management_keys}). */
    SERVICE_KEY,
    /** No key needed: a client on this machine, where no key guards what it asks for. */
    LOOPBACK,
    /** An access token the server signed for a person. */
    JWT,
    /** A person's API key ({@code sk_...}). */
    API_KEY;

    /** What {@code X-Auth-Method} says of a person's request, as Jan's gateway does; null for the others. */
    public String header() {
      return switch (this) {
        case JWT -> "jwt";
        case API_KEY -> "api_key";
        default -> null;
      };
    }
  }

  /** A principal of the server's own (a configured key, a loopback client): no person, no session. */
  public Principal(String id, Via via, Set<Scope> scopes) {
    this(id, via, scopes, null, null, null);
  }

  private static final String KEY = "switchboard.principal";

  public Principal {
    scopes = scopes.isEmpty() ? Set.of() : Set.copyOf(EnumSet.copyOf(scopes));
  }

  /** The same principal with more scopes. */
  Principal with(Set<Scope> more) {
    EnumSet<Scope> all = scopes.isEmpty() ? EnumSet.noneOf(Scope.class) : EnumSet.copyOf(scopes);
    all.addAll(more);
    return new Principal(id, via, all, session, role, keyLimit);
  }

  public boolean may(Scope scope) {
    return scopes.contains(scope);
  }

  /** The principal the authenticator put on this request's context, or null before it ran. */
  public static Principal of(RoutingContext ctx) {
    return ctx.get(KEY);
  }

  void putOn(RoutingContext ctx) {
    ctx.put(KEY, this);
  }
}
