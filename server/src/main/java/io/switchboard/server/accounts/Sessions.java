package io.switchboard.server.accounts;

import io.switchboard.server.store.Database;
import io.vertx.core.Future;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * Sign-in sessions and their refresh tokens. A refresh token is good once: using it gives the next
 * one of the same session, and using one a second time (a stolen copy, or the thief's) ends the
 * whole session. Tokens are kept as their SHA-256 only.
 */
final class Sessions {

  /** A session's next refresh token. */
  record Started(String session, String userId, String refreshToken) {}

  /** What a refresh came to. */
  sealed interface Refresh permits Rotated, Refused {}

  record Rotated(Started next) implements Refresh {}

  /** @param endedSession the session ended because a used token came back; null otherwise */
  record Refused(String reason, String endedSession) implements Refresh {}

  private final Database database;
  private final Duration ttl;

  Sessions(Database database, Duration ttl) {
    this.database = database;
    this.ttl = ttl;
  }

  Future<Started> start(String userId) {
    long now = System.currentTimeMillis() / 1000;
    String session = Secrets.id("ses_", 24);
    String token = "rt_" + Secrets.hex(32);
    return database.tx(h -> {
      h.createUpdate("INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES (:id, :user, :now, :expires)")
          .bind("id", session).bind("user", userId).bind("now", now).bind("expires", now + ttl.toSeconds()).execute();
      h.createUpdate("INSERT INTO refresh_tokens (hash, session_id, expires_at, created_at) VALUES (:hash, :session, :expires, :now)")
          .bind("hash", Secrets.sha256(token)).bind("session", session).bind("expires", now + ttl.toSeconds()).bind("now", now)
          .execute();
      return new Started(session, userId, token);
    });
  }

  private record Row(String session, String userId, long expiresAt, Long usedAt, Long revokedAt) {}

  /** Trades a refresh token for the next one of its session. */
  Future<Refresh> rotate(String refreshToken) {
    long now = System.currentTimeMillis() / 1000;
    String hash = Secrets.sha256(refreshToken);
    return database.tx(h -> {
      Optional<Row> found = h.createQuery("SELECT t.session_id, s.user_id, t.expires_at, t.used_at, s.revoked_at "
              + "FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.hash = :hash")
          .bind("hash", hash)
          .map((rs, ctx) -> new Row(rs.getString(1), rs.getString(2), rs.getLong(3), nullable(rs, 4), nullable(rs, 5)))
          .findOne();
      if (found.isEmpty()) {
        return new Refused("unknown refresh token", null);
      }
      Row row = found.get();
      if (row.revokedAt() != null) {
        return new Refused("this session was ended; sign in again", null);
      }
      if (row.expiresAt() <= now) {
        return new Refused("the refresh token expired; sign in again", null);
      }
      // Only the first to mark it used may rotate: a token used twice is a copy in other hands.
      int won = h.createUpdate("UPDATE refresh_tokens SET used_at = :now WHERE hash = :hash AND used_at IS NULL")
          .bind("now", now).bind("hash", hash).execute();
      if (row.usedAt() != null || won == 0) {
        h.createUpdate("UPDATE sessions SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL")
            .bind("now", now).bind("id", row.session()).execute();
        return new Refused("this refresh token was used before: the session is ended; sign in again", row.session());
      }
      String next = "rt_" + Secrets.hex(32);
      h.createUpdate("INSERT INTO refresh_tokens (hash, session_id, expires_at, created_at) VALUES (:hash, :session, :expires, :now)")
          .bind("hash", Secrets.sha256(next)).bind("session", row.session()).bind("expires", now + ttl.toSeconds()).bind("now", now)
          .execute();
      h.createUpdate("UPDATE sessions SET expires_at = :expires WHERE id = :id")
          .bind("expires", now + ttl.toSeconds()).bind("id", row.session()).execute();
      return new Rotated(new Started(row.session(), row.userId(), next));
    });
  }

  private static Long nullable(ResultSet rs, int column) throws SQLException {
    long value = rs.getLong(column);
    return rs.wasNull() ? null : value;
  }

  /** The session of a refresh token, if it is this user's. */
  Future<Optional<String>> sessionOf(String refreshToken, String userId) {
    return database.read(h -> h.createQuery("SELECT s.id FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id "
            + "WHERE t.hash = :hash AND s.user_id = :user")
        .bind("hash", Secrets.sha256(refreshToken)).bind("user", userId).mapTo(String.class).findOne());
  }

  /** Ends a session: its refresh tokens are refused from now on, and so are its access tokens. */
  Future<Integer> end(String session) {
    return database.tx(h -> h.createUpdate("UPDATE sessions SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL")
        .bind("now", System.currentTimeMillis() / 1000).bind("id", session).execute());
  }

  /** The sessions ended while their access tokens may still be about. */
  Future<List<String>> ended() {
    return database.read(h -> h.createQuery("SELECT id FROM sessions WHERE revoked_at IS NOT NULL AND expires_at > :now")
        .bind("now", System.currentTimeMillis() / 1000).mapTo(String.class).list());
  }
}
