package io.switchboard.server.auth;

import io.vertx.ext.web.RoutingContext;
import java.util.EnumSet;
import java.util.Set;

/**
 * Who a request comes from, resolved once from what it carries, and what it may do. Handlers read
 * it from the request's context ({@link #of}); they never look at credentials themselves.
 *
 * @param id a stable name for logs and accounting, never the credential itself
 * @param via how it authenticated
 * @param scopes what it may do
 */
public record Principal(String id, Via via, Set<Scope> scopes) {

  /** How a principal proved who it is. */
  public enum Via {
    /** A key from the server's configuration ({@code api_key}, {@code inference_keys}, {@code management_keys}). */
    SERVICE_KEY,
    /** No key needed: a client on this machine, where no key guards what it asks for. */
    LOOPBACK
  }

  private static final String KEY = "switchboard.principal";

  public Principal {
    scopes = scopes.isEmpty() ? Set.of() : Set.copyOf(EnumSet.copyOf(scopes));
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
