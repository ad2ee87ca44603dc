package io.switchboard.server.auth;

import io.switchboard.protocol.CloseCodes;
import io.switchboard.protocol.Credentials;
import io.switchboard.protocol.Secret;
import io.switchboard.server.ServerConfig;
import io.switchboard.server.http.ApiError;
import io.vertx.core.Handler;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.net.SocketAddress;
import io.vertx.ext.web.RoutingContext;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Resolves what a request or an agent's dial-in carries into a {@link Principal}, for every edge of
 * the server: the router's routes ({@link #require}), the HTTP/1.1 inference fast path
 * ({@link #authenticate}) and the WebSocket upgrades of workers and relays ({@link #admitAgent}).
 *
 * <p>What a credential stands for, each {@link CredentialResolver} knows for its kind (the service
 * keys of the configuration today). Where no key guards a scope, clients on the loopback interface
 * have it without one, so that a server started without keys is never an open gateway on the network.
 */
public final class Authenticator {

  /** What {@link #authenticate} decided: the principal, or why the request is refused. */
  public sealed interface Outcome permits Admitted, Refused {}

  public record Admitted(Principal principal) implements Outcome {}

  public record Refused(ApiError error) implements Outcome {}

  /** Why an agent (worker, relay) is turned away: the close code and the reason it is told. */
  public record AgentRefusal(short code, String reason) {}

  /** Tried in order; the first that knows a credential decides who it is. */
  private final List<CredentialResolver> resolvers;
  /** The scopes no key guards: a loopback client has them without a key. */
  private final Set<Scope> unguarded;
  private final Principal loopback;
  private final Secret clientKey;

  /** The configuration's service keys, and its client key for agents. */
  public Authenticator(ServerConfig config) {
    this(config, List.of());
  }

  /**
   * {@code people}'s credentials (tokens, API keys), then the configuration's keys. People's
   * resolvers turn down a credential of another kind by its prefix, at no cost, so a request pays
   * one hash (a key) or one lookup (a token), never both.
   */
  public Authenticator(ServerConfig config, List<CredentialResolver> people) {
    ServiceKeys serviceKeys = new ServiceKeys(config);
    List<CredentialResolver> all = new ArrayList<>(people);
    all.add(serviceKeys);
    this.resolvers = List.copyOf(all);
    this.unguarded = serviceKeys.unguarded();
    this.loopback = new Principal("loopback", Principal.Via.LOOPBACK, unguarded);
    this.clientKey = Secret.ofNullable(config.clientKey());
  }

  /** A route handler that lets a request on only when its principal may {@code scope}; 401 in the OpenAI shape otherwise. */
  public Requirement require(Scope scope) {
    return new Requirement(scope, false);
  }

  /**
   * Decides a request from its {@code Authorization} and {@code X-API-Key} headers.
   *
   * @param loopbackClient whether the client is on this machine
   */
  public Outcome authenticate(String authorization, String apiKeyHeader, boolean loopbackClient, Scope scope) {
    String presented = Credentials.presented(authorization, apiKeyHeader);
    Principal principal = resolve(presented, loopbackClient);
    if (principal != null && principal.may(scope)) {
      return new Admitted(principal);
    }
    return new Refused(refusal(presented, principal, scope));
  }

  private Principal resolve(String presented, boolean loopbackClient) {
    Principal matched = presented == null ? null : match(presented);
    if (!loopbackClient || unguarded.isEmpty()) {
      return matched;
    }
    return matched == null ? loopback : matched.with(unguarded);
  }

  private Principal match(String presented) {
    for (CredentialResolver resolver : resolvers) {
      Principal principal = resolver.resolve(presented);
      if (principal != null) {
        return principal;
      }
    }
    return null;
  }

  private ApiError refusal(String presented, Principal principal, Scope scope) {
    if (scope == Scope.USER && principal != null && principal.via() != Principal.Via.LOOPBACK) {
      return ApiError.forbidden("this endpoint is a person's own: send a user's access token or API key");
    }
    if (scope == Scope.USER) {
      return ApiError.unauthorized("sign in first: send a user's access token or API key as 'Authorization: Bearer <token>'");
    }
    if (principal != null && (principal.via() == Principal.Via.JWT || principal.via() == Principal.Via.API_KEY)) {
      return ApiError.forbidden(scope == Scope.OPERATIONS ? "this needs an administrator (the admin role) or one of the server's keys"
          : "this needs an administrator (the admin role) or a management key");
    }
    if (unguarded.contains(scope)) {
      return ApiError.unauthorized("this server has no key configured for this endpoint, so it only serves clients on its own machine");
    }
    if (presented == null) {
      return ApiError.unauthorized("missing API key: send it as 'Authorization: Bearer <key>'");
    }
    return ApiError.unauthorized("invalid API key");
  }

  /**
   * Spec 000's rule for agents that dial in (workers, relays): with a client key configured they must
   * send it, in their first message or as the upgrade's bearer token; without one they must send
   * none, so that a misconfigured agent fails at once instead of believing it is protected.
   *
   * @return null when the agent may register, else why not
   */
  public AgentRefusal admitAgent(String inMessage, String upgradeAuthorization) {
    String offered = inMessage != null && !inMessage.isEmpty() ? inMessage : Credentials.bearer(upgradeAuthorization);
    if (clientKey == null && offered != null) {
      return new AgentRefusal(CloseCodes.UNEXPECTED_CLIENT_KEY, "this server has no client key configured; start the agent without one");
    }
    if (clientKey != null && offered == null) {
      return new AgentRefusal(CloseCodes.UNAUTHORIZED, "client key required");
    }
    if (clientKey != null && !clientKey.matches(offered)) {
      return new AgentRefusal(CloseCodes.UNAUTHORIZED, "invalid client key");
    }
    return null;
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

  /**
   * The handler a route puts first in its chain: it resolves the principal once per request, puts it
   * on the context and lets the request on when it may {@code scope}.
   *
   * @param plainErrors answer 401 as {@code {"error":"..."}} (the instances API, as llamactl does) instead of the OpenAI shape
   */
  public final class Requirement implements Handler<RoutingContext> {
    private final Scope scope;
    private final boolean plainErrors;

    private Requirement(Scope scope, boolean plainErrors) {
      this.scope = scope;
      this.plainErrors = plainErrors;
    }

    /** The same requirement, refusing with the instances API's plain error shape. */
    public Requirement withPlainErrors() {
      return new Requirement(scope, true);
    }

    @Override
    public void handle(RoutingContext ctx) {
      HttpServerRequest request = ctx.request();
      Principal known = Principal.of(ctx);
      Outcome outcome = known != null && known.may(scope) ? new Admitted(known)
          : authenticate(request.getHeader("Authorization"), request.getHeader("X-API-Key"), isLoopback(request.remoteAddress()), scope);
      switch (outcome) {
        case Admitted admitted -> {
          admitted.principal().putOn(ctx);
          String method = admitted.principal().via().header();
          if (method != null) {
            ctx.response().putHeader("X-Auth-Method", method);
          }
          ctx.next();
        }
        case Refused refused when plainErrors -> refused.error().sendPlain(ctx.response());
        case Refused refused -> refused.error().send(ctx.response());
      }
    }
  }
}
