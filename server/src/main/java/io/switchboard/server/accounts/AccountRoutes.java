package io.switchboard.server.accounts;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.switchboard.protocol.Credentials;
import io.switchboard.protocol.Json;
import io.switchboard.server.ServerConfig;
import io.switchboard.server.ServerConfig.RateLimits.Limit;
import io.switchboard.server.auth.Authenticator;
import io.switchboard.server.auth.CredentialResolver;
import io.switchboard.server.auth.Principal;
import io.switchboard.server.auth.Scope;
import io.switchboard.server.http.ApiError;
import io.switchboard.server.http.ApiException;
import io.switchboard.server.http.Capability;
import io.switchboard.server.http.JsonReply;
import io.switchboard.server.http.Mount;
import io.switchboard.server.store.Database;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import java.io.IOException;
import java.util.List;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Spec 003's accounts: guests ({@code POST /auth/guest-login}) and their upgrade, the server's own
 * tokens (access JWTs, rotating refresh tokens, revoke and logout), profiles, settings and API keys.
 * Its credentials ({@link #resolvers()}) join the {@link Authenticator}: every route of the server
 * takes a person's token or key from then on, as the scopes of their roles allow.
 */
public final class AccountRoutes implements Capability {

  private static final Logger log = LoggerFactory.getLogger(AccountRoutes.class);
  private static final Pattern USERNAME = Pattern.compile("[A-Za-z0-9._-]{3,64}");
  private static final Pattern EMAIL = Pattern.compile("[^@\\s]{1,64}@[^@\\s]{1,255}");
  /** How often guests unseen for {@code guest_ttl} are removed, and the signing key checked for rotation. */
  private static final long HOUSEKEEPING_MS = 3_600_000;

  /** What a sign-in or a refresh answers, as Jan's clients read it. */
  record Tokens(String accessToken, String refreshToken, String tokenType, long expiresIn, String userId, String username,
      String principalId) {}

  record Status(String status) {}

  record Upgraded(String status, User user) {}

  record Keys(List<ApiKeys.Key> items) {}

  private final Vertx vertx;
  private final ServerConfig.Accounts settings;
  private final UserStore users;
  private final Sessions sessions;
  private final AccessTokens tokens;
  private final ApiKeys apiKeys;
  /** Sign-in with an identity provider, or null where none is configured. */
  private final OidcSignIn oidc;
  private long housekeeping = -1;

  public AccountRoutes(Vertx vertx, Database database, ServerConfig.Accounts settings) {
    this.vertx = vertx;
    this.settings = settings;
    this.users = new UserStore(database);
    this.sessions = new Sessions(database, settings.refreshTokenTtl());
    this.tokens = new AccessTokens(database, settings);
    this.apiKeys = new ApiKeys(database, settings);
    this.oidc = settings.oidc() == null ? null : new OidcSignIn(vertx, database, settings.oidc());
  }

  /** The credentials of people: access tokens, then API keys. */
  public List<CredentialResolver> resolvers() {
    return List.of(tokens, apiKeys);
  }

  @Override
  public void mount(Mount mount) {
    Router web = mount.web();
    Authenticator.Requirement person = mount.auth().require(Scope.USER);
    web.post("/auth/guest-login").handler(this::guestLogin);
    web.get("/auth/login").handler(this::login);
    web.get("/auth/callback").handler(this::callback);
    web.post("/auth/refresh-token").handler(this::refresh);
    web.get("/auth/refresh-token").handler(this::refresh);
    web.post("/auth/revoke").handler(person).handler(this::revoke);
    web.get("/auth/logout").handler(person).handler(this::logout);
    web.post("/auth/upgrade").handler(person).handler(this::upgrade);
    web.get("/auth/me").handler(person).handler(this::me);
    web.get("/v1/users/me").handler(person).handler(this::me);
    web.get("/v1/users/me/settings").handler(person).handler(this::settings);
    web.patch("/v1/users/me/settings").handler(person).handler(this::patchSettings);
    web.post("/auth/api-keys").handler(person).handler(this::createKey);
    web.get("/auth/api-keys").handler(person).handler(this::listKeys);
    web.delete("/auth/api-keys/:id").handler(person).handler(this::deleteKey);
    web.get("/.well-known/jwks.json").handler(ctx -> JsonReply.send(ctx.response(), 200, tokens.jwks()));
  }

  @Override
  public Future<Void> start() {
    return users.grantAdmins(settings.admins(), null).compose(v -> tokens.load(sessions)).compose(v -> apiKeys.load()).onSuccess(v ->
        housekeeping = vertx.setPeriodic(HOUSEKEEPING_MS, t -> housekeeping()));
  }

  @Override
  public Future<Void> stop() {
    if (housekeeping >= 0) {
      vertx.cancelTimer(housekeeping);
    }
    return Future.succeededFuture();
  }

  /** Removes guests unseen for {@code guest_ttl}, with what they kept, and replaces the signing key when due. */
  Future<List<String>> housekeeping() {
    long before = System.currentTimeMillis() / 1000 - settings.guestTtl().toSeconds();
    return tokens.rotate().compose(v -> users.removeGuestsUnseenSince(before)).onSuccess(removed -> {
      apiKeys.removed(removed);
      if (!removed.isEmpty()) {
        log.info("{} guest(s) unseen for {} removed, with their data", removed.size(), settings.guestTtl());
      }
    }).onFailure(e -> log.warn("accounts housekeeping failed: {}", e.getMessage()));
  }

  private void guestLogin(RoutingContext ctx) {
    if (!settings.guestLogin()) {
      ApiError.forbidden("guest sign-in is turned off on this server (accounts.guest_login)").send(ctx.response());
      return;
    }
    reply(ctx, 201, users.createGuest().compose(guest -> sessions.start(guest.id()).map(started -> tokens(guest, started))));
  }

  /** Starts a sign-in with the identity provider: where to send the browser, with PKCE and a state kept here. */
  private void login(RoutingContext ctx) {
    if (oidc == null) {
      ApiError.notFound("sign-in with an identity provider is not configured on this server (accounts.oidc)").send(ctx.response());
      return;
    }
    String redirect = ctx.request().getParam("redirect_url");
    if (redirect == null || !oidc.allowed(redirect)) {
      ApiError.badRequest("redirect_url must be one of the addresses in accounts.oidc.allowed_redirects").send(ctx.response());
      return;
    }
    if (redirect.indexOf('#') >= 0) {
      ApiError.badRequest("redirect_url must have no fragment (#...): the tokens come back in it").send(ctx.response());
      return;
    }
    reply(ctx, 200, oidc.begin(redirect));
  }

  /**
   * The provider sends the browser back here: the code is traded, the identity becomes a local user
   * (made at its first sign-in), and the browser goes on to the login's redirect URL with our tokens
   * in the fragment, which no server on the way sees.
   */
  private void callback(RoutingContext ctx) {
    String code = ctx.request().getParam("code");
    String state = ctx.request().getParam("state");
    String refused = ctx.request().getParam("error");
    if (oidc == null) {
      ApiError.notFound("sign-in with an identity provider is not configured on this server (accounts.oidc)").send(ctx.response());
      return;
    }
    if (refused != null && state != null) {
      ApiError.unauthorized("the identity provider did not sign you in: " + refused).send(ctx.response());
      return;
    }
    if (code == null || code.isBlank() || state == null || state.isBlank()) {
      ApiError.badRequest("the callback needs code and state").send(ctx.response());
      return;
    }
    oidc.finish(code, state)
        .compose(identity -> users.signedIn(identity.issuer(), identity.subject(), identity.email(), identity.name(),
                identity.preferredUsername())
            .compose(user -> users.grantAdmins(settings.admins(), user.id()).compose(v -> users.find(user.id())))
            .compose(user -> sessions.start(user.orElseThrow().id()).map(started -> tokens(user.orElseThrow(), started)))
            .map(tokens -> identity.redirectUrl() + "#" + fragment(tokens)))
        .onComplete(ar -> {
          if (ar.failed()) {
            ApiException.of(ar.cause()).send(ctx.response());
          } else {
            ctx.response().setStatusCode(302).putHeader("Location", ar.result()).putHeader("Cache-Control", "no-store").end();
          }
        });
  }

  private static String fragment(Tokens tokens) {
    return "access_token=" + tokens.accessToken() + "&refresh_token=" + tokens.refreshToken() + "&token_type=Bearer&expires_in="
        + tokens.expiresIn() + "&user_id=" + tokens.userId();
  }

  private Tokens tokens(User user, Sessions.Started started) {
    return new Tokens(tokens.issue(user, started.session()), started.refreshToken(), "Bearer", tokens.ttlSeconds(), user.id(),
        user.username(), user.id());
  }

  /** The refresh token comes in the body ({@code refresh_token}), or as the bearer token (Jan's web app sends it so). */
  private void refresh(RoutingContext ctx) {
    JsonNode body = bodyOrEmpty(ctx);
    String token = body.path("refresh_token").isTextual() ? body.path("refresh_token").asText()
        : Credentials.bearer(ctx.request().getHeader("Authorization"));
    if (token == null || token.isBlank()) {
      ApiError.unauthorized("missing refresh token: send it as {\"refresh_token\": ...} or as 'Authorization: Bearer <token>'")
          .send(ctx.response());
      return;
    }
    reply(ctx, 200, sessions.rotate(token).compose(outcome -> switch (outcome) {
      case Sessions.Rotated rotated -> users.seen(rotated.next().userId())
          .compose(v -> users.find(rotated.next().userId()))
          .map(user -> tokens(user.orElseThrow(() -> new ApiException(ApiError.unauthorized("the user is gone"))), rotated.next()));
      case Sessions.Refused refused -> {
        if (refused.endedSession() != null) {
          tokens.ended(refused.endedSession());
          log.warn("a used refresh token came back: session {} ended", refused.endedSession());
        }
        yield Future.<Tokens>failedFuture(new ApiException(ApiError.unauthorized(refused.reason())));
      }
    }));
  }

  /** Ends the session of the given refresh token (one of the caller's), or else the caller's own. */
  private void revoke(RoutingContext ctx) {
    Principal principal = Principal.of(ctx);
    JsonNode body = bodyOrEmpty(ctx);
    Future<String> session = body.path("refresh_token").isTextual()
        ? sessions.sessionOf(body.path("refresh_token").asText(), principal.id())
            .map(found -> found.orElseThrow(() -> new ApiException(ApiError.notFound("no such refresh token of yours"))))
        : ownSession(principal);
    reply(ctx, 200, session.compose(this::end).map(v -> new Status("revoked")));
  }

  private void logout(RoutingContext ctx) {
    reply(ctx, 200, ownSession(Principal.of(ctx)).compose(this::end).map(v -> new Status("logged_out")));
  }

  private static Future<String> ownSession(Principal principal) {
    return principal.session() != null ? Future.succeededFuture(principal.session())
        : Future.failedFuture(new ApiException(ApiError.badRequest(
            "an API key has no session to end; delete the key with DELETE /auth/api-keys/{id}")));
  }

  private Future<Void> end(String session) {
    tokens.ended(session);
    return sessions.end(session).mapEmpty();
  }

  private void upgrade(RoutingContext ctx) {
    JsonNode body = body(ctx);
    String username = body.path("username").asText("");
    String email = body.path("email").asText("");
    String fullName = body.path("full_name").isTextual() ? body.path("full_name").asText() : null;
    if (!USERNAME.matcher(username).matches()) {
      ApiError.badRequest("username must be 3-64 letters, digits, '.', '_' or '-'").send(ctx.response());
      return;
    }
    if (!EMAIL.matcher(email).matches()) {
      ApiError.badRequest("email must be an email address").send(ctx.response());
      return;
    }
    String id = Principal.of(ctx).id();
    reply(ctx, 200, users.upgrade(id, username, email, fullName).compose(outcome -> switch (outcome) {
      case DONE -> users.grantAdmins(settings.admins(), id).compose(v -> users.find(id))
          .map(user -> new Upgraded("upgraded", user.orElseThrow()));
      case NOT_A_GUEST -> Future.<Upgraded>failedFuture(new ApiException(ApiError.conflict("not_a_guest", "this account is not a guest's")));
      case USERNAME_TAKEN -> Future.<Upgraded>failedFuture(new ApiException(ApiError.conflict("username_taken", "username '" + username
          + "' is taken")));
      case EMAIL_TAKEN -> Future.<Upgraded>failedFuture(new ApiException(ApiError.conflict("email_taken", "that email is taken")));
      case GONE -> Future.<Upgraded>failedFuture(new ApiException(ApiError.notFound("this user is gone")));
    }));
  }

  private void me(RoutingContext ctx) {
    reply(ctx, 200, user(ctx));
  }

  private Future<User> user(RoutingContext ctx) {
    return users.find(Principal.of(ctx).id())
        .map(user -> user.orElseThrow(() -> new ApiException(ApiError.notFound("this user is gone"))));
  }

  private void settings(RoutingContext ctx) {
    String id = Principal.of(ctx).id();
    reply(ctx, 200, users.settings(id).compose(stored -> stored.isPresent() ? Future.succeededFuture(stored.get())
        : users.saveSettings(id, UserSettings.defaults())).map(settings -> withOwner(id, settings)));
  }

  private void patchSettings(RoutingContext ctx) {
    String id = Principal.of(ctx).id();
    JsonNode patch = body(ctx);
    reply(ctx, 200, users.settings(id).map(stored -> stored.orElseGet(UserSettings::defaults)).compose(current -> {
      ObjectNode next;
      try {
        next = UserSettings.patched(current, patch);
      } catch (IllegalArgumentException e) {
        return Future.failedFuture(new ApiException(ApiError.badRequest(e.getMessage())));
      }
      return users.saveSettings(id, next);
    }).map(settings -> withOwner(id, settings)));
  }

  private static ObjectNode withOwner(String userId, ObjectNode settings) {
    ObjectNode answer = Json.MAPPER.createObjectNode().put("user_id", userId);
    answer.setAll(settings);
    return answer;
  }

  private void createKey(RoutingContext ctx) {
    JsonNode body = body(ctx);
    String name = body.path("name").asText("");
    if (name.isBlank() || name.length() > 100) {
      ApiError.badRequest("name must be 1-100 characters").send(ctx.response());
      return;
    }
    JsonNode daysNode = body.get("expires_in_days");
    int days = settings.apiKeyMaxDays();
    if (daysNode != null && !daysNode.isNull()) {
      if (!daysNode.isIntegralNumber() || daysNode.asInt() < 1 || daysNode.asInt() > settings.apiKeyMaxDays()) {
        ApiError.badRequest("expires_in_days must be a whole number from 1 to " + settings.apiKeyMaxDays()).send(ctx.response());
        return;
      }
      days = daysNode.asInt();
    }
    int lifetime = days;
    Limit limit;
    try {
      limit = keyLimit(body.get("rate_limit"));
    } catch (ApiException e) {
      e.error().send(ctx.response());
      return;
    }
    reply(ctx, 201, user(ctx).compose(user -> {
      if (user.isGuest()) {
        return Future.failedFuture(new ApiException(ApiError.forbidden("guests cannot make API keys; upgrade first (POST /auth/upgrade)")));
      }
      String aboveRole = aboveRole(limit, AccessTokens.role(user.roles()));
      if (aboveRole != null) {
        return Future.failedFuture(new ApiException(ApiError.badRequest(aboveRole)));
      }
      return apiKeys.create(user, name, lifetime, limit).recover(e -> Future.failedFuture(e instanceof ApiKeys.Refused refused
          ? new ApiException(ApiError.conflict("api_key_limit_reached", refused.getMessage())) : e));
    }));
  }

  /** A key's own rate limit as asked: {@code {"requests": n, "tokens": n}}, either or both; null when none is. */
  private static Limit keyLimit(JsonNode asked) {
    if (asked == null || asked.isNull()) {
      return null;
    }
    if (!asked.isObject() || asked.isEmpty()) {
      throw new ApiException(ApiError.badRequest("rate_limit must be an object with requests, tokens or both (per window)"));
    }
    asked.fieldNames().forEachRemaining(field -> {
      if (!field.equals("requests") && !field.equals("tokens")) {
        throw new ApiException(ApiError.badRequest("rate_limit has no field '" + field + "': it takes requests and tokens"));
      }
    });
    return new Limit(asked.has("requests") ? (int) positive(asked.get("requests"), "rate_limit.requests", Integer.MAX_VALUE) : null,
        asked.has("tokens") ? positive(asked.get("tokens"), "rate_limit.tokens", Long.MAX_VALUE) : null);
  }

  private static long positive(JsonNode number, String field, long most) {
    if (!number.isIntegralNumber() || !number.canConvertToLong() || number.asLong() < 1 || number.asLong() > most) {
      throw new ApiException(ApiError.badRequest(field + " must be a whole number from 1 to " + most));
    }
    return number.asLong();
  }

  /** Why a key's limit cannot be had by a person of {@code role}, or null: a key narrows its owner's limit, never widens it. */
  private String aboveRole(Limit limit, String role) {
    Limit roles = settings.rateLimits().roles().get(role);
    if (limit == null || roles == null) {
      return null;
    }
    if (limit.requests() != null && roles.requests() != null && limit.requests() > roles.requests()) {
      return "rate_limit.requests is more than the " + roles.requests() + " your role (" + role + ") may make per window";
    }
    if (limit.tokens() != null && roles.tokens() != null && limit.tokens() > roles.tokens()) {
      return "rate_limit.tokens is more than the " + roles.tokens() + " your role (" + role + ") may use per window";
    }
    return null;
  }

  private void listKeys(RoutingContext ctx) {
    reply(ctx, 200, apiKeys.list(Principal.of(ctx).id()).map(Keys::new));
  }

  private void deleteKey(RoutingContext ctx) {
    apiKeys.delete(Principal.of(ctx).id(), ctx.pathParam("id")).onComplete(ar -> {
      if (ar.failed()) {
        ApiException.of(ar.cause()).send(ctx.response());
      } else if (!ar.result()) {
        ApiError.notFound("you have no API key '" + ctx.pathParam("id") + "'").send(ctx.response());
      } else {
        ctx.response().setStatusCode(204).end();
      }
    });
  }

  private static void reply(RoutingContext ctx, int status, Future<?> result) {
    result.onComplete(ar -> {
      if (ar.failed()) {
        ApiException.of(ar.cause()).send(ctx.response());
      } else {
        JsonReply.send(ctx.response(), status, ar.result());
      }
    });
  }

  /** The body as JSON; 400 when it is not. */
  private static JsonNode body(RoutingContext ctx) {
    Buffer body = ctx.body().buffer();
    if (body == null || body.length() == 0) {
      throw new ApiException(ApiError.badRequest("the body must be a JSON object"));
    }
    try {
      JsonNode json = Json.MAPPER.readTree(body.getBytes());
      if (json == null || !json.isObject()) {
        throw new ApiException(ApiError.badRequest("the body must be a JSON object"));
      }
      return json;
    } catch (IOException e) {
      throw new ApiException(ApiError.invalidJson(e.getMessage()));
    }
  }

  private static JsonNode bodyOrEmpty(RoutingContext ctx) {
    Buffer body = ctx.body().buffer();
    return body == null || body.length() == 0 ? Json.MAPPER.createObjectNode() : body(ctx);
  }
}
