package io.switchboard.server.accounts;

import com.nimbusds.jose.JOSEException;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.proc.BadJOSEException;
import com.nimbusds.oauth2.sdk.AuthorizationCode;
import com.nimbusds.oauth2.sdk.AuthorizationCodeGrant;
import com.nimbusds.oauth2.sdk.ParseException;
import com.nimbusds.oauth2.sdk.ResponseType;
import com.nimbusds.oauth2.sdk.TokenRequest;
import com.nimbusds.oauth2.sdk.TokenResponse;
import com.nimbusds.oauth2.sdk.auth.ClientSecretBasic;
import com.nimbusds.oauth2.sdk.id.ClientID;
import com.nimbusds.oauth2.sdk.id.Issuer;
import com.nimbusds.oauth2.sdk.id.State;
import com.nimbusds.oauth2.sdk.pkce.CodeChallengeMethod;
import com.nimbusds.oauth2.sdk.pkce.CodeVerifier;
import com.nimbusds.openid.connect.sdk.AuthenticationRequest;
import com.nimbusds.openid.connect.sdk.Nonce;
import com.nimbusds.openid.connect.sdk.OIDCTokenResponse;
import com.nimbusds.openid.connect.sdk.OIDCTokenResponseParser;
import com.nimbusds.openid.connect.sdk.claims.IDTokenClaimsSet;
import com.nimbusds.openid.connect.sdk.op.OIDCProviderMetadata;
import com.nimbusds.openid.connect.sdk.validators.IDTokenValidator;
import io.switchboard.server.ServerConfig;
import io.switchboard.server.http.ApiError;
import io.switchboard.server.http.ApiException;
import io.switchboard.server.store.Database;
import io.switchboard.vertx.Blocking;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.io.IOException;
import java.net.URI;
import java.time.Duration;
import java.util.Optional;

/**
 * Sign-in with an OpenID Connect provider: the authorization code flow with PKCE (S256) and a nonce,
 * the login's state kept in the database (single use, ten minutes), the code exchanged with the
 * client's secret, and the ID token checked (signature by the provider's published keys, issuer,
 * audience, expiry, nonce) with the Nimbus OAuth 2.0 SDK. The provider is found through its
 * discovery document at first use.
 */
final class OidcSignIn {

  private static final Duration LOGIN_TTL = Duration.ofMinutes(10);

  /** What a login hands the client: where to send the browser, and the state it will come back with. */
  record Login(String authorizationUrl, String state) {}

  /** Who the provider says signed in, and where the browser goes next. */
  record Identity(String issuer, String subject, String email, String name, String preferredUsername, String redirectUrl) {}

  private final Vertx vertx;
  private final Database database;
  private final ServerConfig.Oidc config;
  private volatile OIDCProviderMetadata provider;

  OidcSignIn(Vertx vertx, Database database, ServerConfig.Oidc config) {
    this.vertx = vertx;
    this.database = database;
    this.config = config;
  }

  /**
   * Whether {@code url} is one a login may send the browser back to: an allowed address, or one
   * under it. An entry without a path ends at the host: {@code https://app.example} allows
   * {@code https://app.example/done}, not {@code https://app.example.evil.com}.
   */
  boolean allowed(String url) {
    return config.allowedRedirects().stream().anyMatch(allowed -> url.startsWith(allowed)
        && (allowed.endsWith("/") || url.length() == allowed.length() || "/?".indexOf(url.charAt(allowed.length())) >= 0));
  }

  Future<Login> begin(String redirectUrl) {
    return provider().compose(meta -> {
      State state = new State();
      CodeVerifier verifier = new CodeVerifier();
      Nonce nonce = new Nonce();
      URI url = new AuthenticationRequest.Builder(new ResponseType(ResponseType.Value.CODE),
          com.nimbusds.oauth2.sdk.Scope.parse(config.scopes()), new ClientID(config.clientId()), URI.create(config.redirectUri()))
          .endpointURI(meta.getAuthorizationEndpointURI())
          .state(state)
          .nonce(nonce)
          .codeChallenge(verifier, CodeChallengeMethod.S256)
          .build()
          .toURI();
      long expires = System.currentTimeMillis() / 1000 + LOGIN_TTL.toSeconds();
      return database.tx(h -> h.createUpdate("INSERT INTO oidc_logins (state, verifier, nonce, redirect_url, expires_at) "
              + "VALUES (:state, :verifier, :nonce, :redirect, :expires)")
          .bind("state", state.getValue()).bind("verifier", verifier.getValue()).bind("nonce", nonce.getValue())
          .bind("redirect", redirectUrl).bind("expires", expires).execute())
          .map(v -> new Login(url.toString(), state.getValue()));
    });
  }

  private record Pending(String verifier, String nonce, String redirectUrl) {}

  /** The login of {@code state} ends here: the code traded, the ID token checked. 401 for an unknown, spent or expired state. */
  Future<Identity> finish(String code, String state) {
    return take(state).compose(pending -> provider().compose(meta -> Blocking.call(vertx, () -> identity(meta, code, pending))));
  }

  /** The login's state, deleted as it is read: a second use finds none. */
  private Future<Pending> take(String state) {
    long now = System.currentTimeMillis() / 1000;
    return database.tx(h -> {
      Optional<Pending> pending = h.createQuery("SELECT verifier, nonce, redirect_url, expires_at FROM oidc_logins WHERE state = :s")
          .bind("s", state)
          .map((rs, ctx) -> rs.getLong("expires_at") > now
              ? new Pending(rs.getString("verifier"), rs.getString("nonce"), rs.getString("redirect_url")) : null)
          .findFirst();
      int taken = h.createUpdate("DELETE FROM oidc_logins WHERE state = :s OR expires_at <= :now").bind("s", state).bind("now", now)
          .execute();
      if (pending.isEmpty() || pending.get() == null || taken == 0) {
        throw new ApiException(ApiError.unauthorized("unknown, used or expired login state; start the sign-in again"));
      }
      return pending.get();
    });
  }

  private Identity identity(OIDCProviderMetadata meta, String code, Pending pending) throws IOException {
    TokenRequest request = new TokenRequest(meta.getTokenEndpointURI(),
        new ClientSecretBasic(new ClientID(config.clientId()), new com.nimbusds.oauth2.sdk.auth.Secret(config.clientSecret())),
        new AuthorizationCodeGrant(new AuthorizationCode(code), URI.create(config.redirectUri()), new CodeVerifier(pending.verifier())));
    TokenResponse response;
    try {
      response = OIDCTokenResponseParser.parse(request.toHTTPRequest().send());
    } catch (ParseException e) {
      throw new ApiException(ApiError.upstream("oidc_failed", "the identity provider's token answer is not one: " + e.getMessage()));
    }
    if (!response.indicatesSuccess()) {
      throw new ApiException(ApiError.upstream("oidc_refused", "the identity provider refused the code: "
          + response.toErrorResponse().getErrorObject().getDescription()));
    }
    IDTokenClaimsSet claims;
    try {
      claims = new IDTokenValidator(meta.getIssuer(), new ClientID(config.clientId()), JWSAlgorithm.RS256, meta.getJWKSetURI().toURL())
          .validate(((OIDCTokenResponse) response.toSuccessResponse()).getOIDCTokens().getIDToken(), new Nonce(pending.nonce()));
    } catch (BadJOSEException | JOSEException e) {
      throw new ApiException(ApiError.upstream("oidc_failed", "the identity provider's ID token does not hold: " + e.getMessage()));
    }
    return new Identity(meta.getIssuer().getValue(), claims.getSubject().getValue(), claims.getStringClaim("email"),
        claims.getStringClaim("name"), claims.getStringClaim("preferred_username"), pending.redirectUrl());
  }

  /** The provider's metadata, discovered once; 502 while it cannot be reached. */
  private Future<OIDCProviderMetadata> provider() {
    OIDCProviderMetadata known = provider;
    if (known != null) {
      return Future.succeededFuture(known);
    }
    return Blocking.call(vertx, () -> {
      try {
        OIDCProviderMetadata found = OIDCProviderMetadata.resolve(new Issuer(config.issuer()));
        provider = found;
        return found;
      } catch (IOException | com.nimbusds.oauth2.sdk.GeneralException e) {
        throw new ApiException(ApiError.upstream("oidc_unreachable", "cannot read the identity provider's configuration at "
            + config.issuer() + ": " + e.getMessage()));
      }
    });
  }
}
