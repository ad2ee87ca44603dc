package io.switchboard.server.accounts;

import io.switchboard.server.ServerConfig;
import io.switchboard.server.ServerConfig.RateLimits.Limit;
import io.switchboard.server.auth.CredentialResolver;
import io.switchboard.server.auth.Principal;
import io.switchboard.server.store.Database;
import io.vertx.core.Future;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * People's API keys ({@code sk_live_...}): made and shown once, listed without their secret,
 * deleted. Kept as SHA-256 in the database; the keys in force are also kept at hand, by hash, so a
 * request looks its key up without a query, and a deleted key is refused on the very next request.
 */
final class ApiKeys implements CredentialResolver {

  /**
   * A key as its owner sees it in a list; {@code createdAt}, {@code expiresAt} in Unix seconds;
   * {@code rateLimit} its own limit per window, or null.
   */
  record Key(String id, String name, String prefix, String suffix, long expiresAt, long createdAt, Limit rateLimit) {}

  /** A key just made, with its secret: the only time it is shown. */
  record Created(String id, String key, String name, String prefix, String suffix, long expiresAt, long createdAt,
      Limit rateLimit) {}

  private record InForce(String id, String userId, long expiresAt, Principal principal) {}

  private final Database database;
  private final ServerConfig.Accounts settings;
  private final Map<String, InForce> byHash = new ConcurrentHashMap<>();

  ApiKeys(Database database, ServerConfig.Accounts settings) {
    this.database = database;
    this.settings = settings;
  }

  Future<Void> load() {
    long now = System.currentTimeMillis() / 1000;
    return database.read(h -> h.createQuery("SELECT k.id, k.user_id, k.hash, k.expires_at, k.rate_requests, k.rate_tokens, u.roles "
            + "FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.expires_at > :now")
        .bind("now", now)
        .map((rs, ctx) -> Map.entry(rs.getString("hash"), inForce(rs.getString("id"), rs.getString("user_id"),
            rs.getLong("expires_at"), Arrays.asList(rs.getString("roles").split(",")), limit(rs))))
        .list()).map(rows -> {
          rows.forEach(row -> byHash.put(row.getKey(), row.getValue()));
          return null;
        });
  }

  private static InForce inForce(String id, String userId, long expiresAt, List<String> roles, Limit limit) {
    return new InForce(id, userId, expiresAt, new Principal(userId, Principal.Via.API_KEY, AccessTokens.scopes(roles), null,
        AccessTokens.role(roles), limit == null ? null : new Principal.KeyLimit(id, limit)));
  }

  private static Limit limit(ResultSet rs) throws SQLException {
    Integer requests = rs.getObject("rate_requests") == null ? null : rs.getInt("rate_requests");
    Long tokens = rs.getObject("rate_tokens") == null ? null : rs.getLong("rate_tokens");
    return Limit.ofNullable(requests, tokens);
  }

  /** Why a key was not made. */
  static final class Refused extends RuntimeException {
    Refused(String message) {
      super(message, null, false, false);
    }
  }

  /**
   * Makes a key for {@code user}, with its own rate limit or none ({@code limit} null); fails with
   * {@link Refused} at the per-user maximum.
   */
  Future<Created> create(User user, String name, int days, Limit limit) {
    long now = System.currentTimeMillis() / 1000;
    String secret = "sk_live_" + Secrets.hex(24);
    Created created = new Created(Secrets.id("key_", 16), secret, name, secret.substring(0, 12), secret.substring(secret.length() - 4),
        now + days * 86_400L, now, limit);
    String hash = Secrets.sha256(secret);
    return database.tx(h -> {
      int held = h.createQuery("SELECT COUNT(*) FROM api_keys WHERE user_id = :user AND expires_at > :now")
          .bind("user", user.id()).bind("now", now).mapTo(Integer.class).one();
      if (held >= settings.apiKeysPerUser()) {
        throw new Refused("you hold " + held + " API keys, the most a user may (accounts.api_keys_per_user); delete one first");
      }
      h.createUpdate("INSERT INTO api_keys (id, user_id, name, hash, prefix, suffix, expires_at, created_at, rate_requests, rate_tokens) "
              + "VALUES (:id, :user, :name, :hash, :prefix, :suffix, :expires, :now, :requests, :tokens)")
          .bind("id", created.id()).bind("user", user.id()).bind("name", name).bind("hash", hash).bind("prefix", created.prefix())
          .bind("suffix", created.suffix()).bind("expires", created.expiresAt()).bind("now", now)
          .bind("requests", limit == null ? null : limit.requests()).bind("tokens", limit == null ? null : limit.tokens()).execute();
      return created;
    }).onSuccess(made -> byHash.put(hash, inForce(made.id(), user.id(), made.expiresAt(), user.roles(), limit)));
  }

  /** The user's keys in force, newest first. */
  Future<List<Key>> list(String userId) {
    return database.read(h -> h.createQuery("SELECT id, name, prefix, suffix, expires_at, created_at, rate_requests, rate_tokens "
            + "FROM api_keys WHERE user_id = :user AND expires_at > :now ORDER BY created_at DESC, id")
        .bind("user", userId).bind("now", System.currentTimeMillis() / 1000)
        .map((rs, ctx) -> new Key(rs.getString("id"), rs.getString("name"), rs.getString("prefix"), rs.getString("suffix"),
            rs.getLong("expires_at"), rs.getLong("created_at"), limit(rs)))
        .list());
  }

  /** Deletes one of the user's keys; false when the user has none of that id. */
  Future<Boolean> delete(String userId, String id) {
    byHash.values().removeIf(key -> key.id().equals(id) && key.userId().equals(userId));
    return database.tx(h -> h.createUpdate("DELETE FROM api_keys WHERE id = :id AND user_id = :user")
        .bind("id", id).bind("user", userId).execute() == 1);
  }

  /** Forgets the keys of users that are gone. */
  void removed(List<String> userIds) {
    byHash.values().removeIf(key -> userIds.contains(key.userId()));
  }

  @Override
  public Principal resolve(String token) {
    if (!token.startsWith("sk_")) {
      return null;
    }
    InForce key = byHash.get(Secrets.sha256(token));
    if (key == null) {
      return null;
    }
    if (key.expiresAt() <= System.currentTimeMillis() / 1000) {
      byHash.values().remove(key);
      return null;
    }
    return key.principal();
  }
}
