package io.switchboard.server.accounts;

import com.nimbusds.jose.JOSEException;
import com.nimbusds.jose.JOSEObjectType;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.crypto.ECDSASigner;
import com.nimbusds.jose.crypto.ECDSAVerifier;
import com.nimbusds.jose.jwk.Curve;
import com.nimbusds.jose.jwk.ECKey;
import com.nimbusds.jose.jwk.JWK;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.KeyUse;
import com.nimbusds.jose.jwk.gen.ECKeyGenerator;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import io.switchboard.server.ServerConfig;
import io.switchboard.server.auth.CredentialResolver;
import io.switchboard.server.auth.Principal;
import io.switchboard.server.auth.Scope;
import io.switchboard.server.store.Database;
import io.vertx.core.Future;
import java.text.ParseException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Date;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The server's access tokens: JWTs signed with ES256 by a key of its own, kept in the database and
 * replaced every {@code signing_key_rotation} (older keys still verify until their tokens have
 * expired), published at {@code /.well-known/jwks.json}. A token is refused as soon as its session
 * ends, before it expires. Verified tokens are kept at hand until they expire, so that a request
 * pays a lookup, not a signature check.
 */
final class AccessTokens implements CredentialResolver {

  static final String ISSUER = "switchboard";
  /** Verified tokens kept at most (a token is half a kilobyte); beyond, the cache starts over and a token is verified again. */
  private static final int CACHE_SIZE = 10_000;

  private record Verified(Principal principal, long expiresAtMillis) {}

  private final Database database;
  private final ServerConfig.Accounts settings;
  private final Map<String, ECKey> keys = new ConcurrentHashMap<>();
  private final Set<String> endedSessions = ConcurrentHashMap.newKeySet();
  private final Map<String, Verified> verified = new ConcurrentHashMap<>();
  private volatile ECKey signing;

  AccessTokens(Database database, ServerConfig.Accounts settings) {
    this.database = database;
    this.settings = settings;
  }

  /** Reads the signing keys (making the first, or the next when the current one is due) and the sessions ended. */
  Future<Void> load(Sessions sessions) {
    return rotate().compose(v -> sessions.ended()).map(ended -> {
      endedSessions.addAll(ended);
      return null;
    });
  }

  /** Makes a new signing key when the newest is older than the rotation; forgets keys no token can still need. */
  Future<Void> rotate() {
    long now = System.currentTimeMillis() / 1000;
    long keepFor = settings.signingKeyRotation().toSeconds() + settings.accessTokenTtl().toSeconds();
    return database.tx(h -> {
      h.createUpdate("DELETE FROM signing_keys WHERE created_at < :before").bind("before", now - keepFor).execute();
      List<Map.Entry<Long, ECKey>> stored = new ArrayList<>(h.createQuery("SELECT jwk, created_at FROM signing_keys")
          .map((rs, ctx) -> Map.entry(rs.getLong("created_at"), parse(rs.getString("jwk")))).list());
      stored.sort(Map.Entry.<Long, ECKey>comparingByKey(Comparator.reverseOrder()));
      if (stored.isEmpty() || stored.getFirst().getKey() < now - settings.signingKeyRotation().toSeconds()) {
        ECKey fresh = generate();
        h.createUpdate("INSERT INTO signing_keys (kid, jwk, created_at) VALUES (:kid, :jwk, :now)")
            .bind("kid", fresh.getKeyID()).bind("jwk", fresh.toJSONString()).bind("now", now).execute();
        stored.addFirst(Map.entry(now, fresh));
      }
      return stored;
    }).map(stored -> {
      keys.keySet().retainAll(stored.stream().map(entry -> entry.getValue().getKeyID()).toList());
      stored.forEach(entry -> keys.put(entry.getValue().getKeyID(), entry.getValue()));
      signing = stored.getFirst().getValue();
      return null;
    });
  }

  /** Seconds an access token is good for. */
  long ttlSeconds() {
    return settings.accessTokenTtl().toSeconds();
  }

  /** A signed access token for {@code user}'s {@code session}. */
  String issue(User user, String session) {
    Date now = new Date();
    JWTClaimsSet claims = new JWTClaimsSet.Builder()
        .issuer(ISSUER)
        .subject(user.id())
        .issueTime(now)
        .expirationTime(new Date(now.getTime() + settings.accessTokenTtl().toMillis()))
        .jwtID(Secrets.id("", 16))
        .claim("sid", session)
        .claim("roles", user.roles())
        .claim("guest", user.isGuest())
        .claim("preferred_username", user.username())
        .build();
    ECKey key = signing;
    SignedJWT jwt = new SignedJWT(new JWSHeader.Builder(JWSAlgorithm.ES256).keyID(key.getKeyID()).type(JOSEObjectType.JWT).build(),
        claims);
    try {
      jwt.sign(new ECDSASigner(key));
    } catch (JOSEException e) {
      throw new IllegalStateException("cannot sign an access token: " + e.getMessage(), e);
    }
    return jwt.serialize();
  }

  /** The public halves of the keys that verify tokens now, as a JWK set. */
  Map<String, Object> jwks() {
    return new JWKSet(new ArrayList<JWK>(keys.values())).toPublicJWKSet().toJSONObject();
  }

  /** From now on, tokens of {@code session} are refused. */
  void ended(String session) {
    endedSessions.add(session);
  }

  @Override
  public Principal resolve(String token) {
    if (!token.startsWith("eyJ")) {
      return null;
    }
    long now = System.currentTimeMillis();
    Verified known = verified.get(token);
    if (known == null || known.expiresAtMillis() <= now) {
      known = verify(token, now);
      if (known == null) {
        return null;
      }
      if (verified.size() >= CACHE_SIZE) {
        verified.clear();
      }
      verified.put(token, known);
    }
    return endedSessions.contains(known.principal().session()) ? null : known.principal();
  }

  private Verified verify(String token, long now) {
    try {
      SignedJWT jwt = SignedJWT.parse(token);
      ECKey key = keys.get(String.valueOf(jwt.getHeader().getKeyID()));
      if (key == null || !JWSAlgorithm.ES256.equals(jwt.getHeader().getAlgorithm()) || !jwt.verify(new ECDSAVerifier(key))) {
        return null;
      }
      JWTClaimsSet claims = jwt.getJWTClaimsSet();
      Date expires = claims.getExpirationTime();
      String session = claims.getStringClaim("sid");
      if (!ISSUER.equals(claims.getIssuer()) || expires == null || expires.getTime() <= now || claims.getSubject() == null
          || session == null) {
        return null;
      }
      List<String> roles = claims.getStringListClaim("roles");
      String role = Boolean.TRUE.equals(claims.getBooleanClaim("guest")) ? User.ROLE_GUEST : role(roles);
      return new Verified(new Principal(claims.getSubject(), Principal.Via.JWT, scopes(roles), session, role, null), expires.getTime());
    } catch (ParseException | JOSEException e) {
      return null;
    }
  }

  /** What a person with these roles may do. */
  static Set<Scope> scopes(List<String> roles) {
    EnumSet<Scope> scopes = EnumSet.of(Scope.INFERENCE, Scope.USER);
    if (roles != null && roles.contains(User.ROLE_ADMIN)) {
      scopes.add(Scope.OPERATIONS);
      scopes.add(Scope.MANAGEMENT);
    }
    return scopes;
  }

  /** The role a person's limits are those of: admin over user. */
  static String role(List<String> roles) {
    return roles != null && roles.contains(User.ROLE_ADMIN) ? User.ROLE_ADMIN : User.ROLE_USER;
  }

  private static ECKey generate() {
    try {
      return new ECKeyGenerator(Curve.P_256).keyID(Secrets.id("", 20)).keyUse(KeyUse.SIGNATURE).algorithm(JWSAlgorithm.ES256)
          .generate();
    } catch (JOSEException e) {
      throw new IllegalStateException("cannot make a signing key: " + e.getMessage(), e);
    }
  }

  private static ECKey parse(String jwk) {
    try {
      return ECKey.parse(jwk);
    } catch (ParseException e) {
      throw new IllegalStateException("a stored signing key is not a JWK", e);
    }
  }
}
