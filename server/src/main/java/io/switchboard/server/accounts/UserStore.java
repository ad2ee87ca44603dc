package io.switchboard.server.accounts;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.switchboard.protocol.Json;
import io.switchboard.server.store.Database;
import io.vertx.core.Future;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import org.jdbi.v3.core.Handle;

/** The users table and each user's settings. */
final class UserStore {

  private final Database database;

  UserStore(Database database) {
    this.database = database;
  }

  Future<User> createGuest() {
    long now = System.currentTimeMillis() / 1000;
    String id = java.util.UUID.randomUUID().toString();
    User guest = new User(id, "guest-" + id, null, null, List.of(User.ROLE_USER), true, now);
    return database.tx(h -> {
      h.createUpdate("INSERT INTO users (id, username, email, full_name, is_guest, roles, created_at, last_seen_at) "
              + "VALUES (:id, :username, NULL, NULL, :guest, :roles, :now, :now)")
          .bind("id", id).bind("username", guest.username()).bind("guest", true).bind("roles", User.ROLE_USER).bind("now", now)
          .execute();
      return guest;
    });
  }

  Future<Optional<User>> find(String id) {
    return database.read(h -> find(h, id));
  }

  static Optional<User> find(Handle h, String id) {
    return h.createQuery("SELECT id, username, email, full_name, is_guest, roles, created_at FROM users WHERE id = :id")
        .bind("id", id).map((rs, ctx) -> user(rs)).findOne();
  }

  /** Why an upgrade cannot be made, or null when it was. */
  enum Upgrade { DONE, NOT_A_GUEST, USERNAME_TAKEN, EMAIL_TAKEN, GONE }

  /** The guest becomes a full user under the same id, keeping all it has. */
  Future<Upgrade> upgrade(String id, String username, String email, String fullName) {
    return database.tx(h -> {
      Optional<User> user = find(h, id);
      if (user.isEmpty()) {
        return Upgrade.GONE;
      }
      if (!user.get().isGuest()) {
        return Upgrade.NOT_A_GUEST;
      }
      if (h.createQuery("SELECT COUNT(*) FROM users WHERE username = :u AND id <> :id").bind("u", username).bind("id", id)
          .mapTo(Integer.class).one() > 0) {
        return Upgrade.USERNAME_TAKEN;
      }
      if (h.createQuery("SELECT COUNT(*) FROM users WHERE LOWER(email) = LOWER(:e)").bind("e", email).mapTo(Integer.class).one() > 0) {
        return Upgrade.EMAIL_TAKEN;
      }
      h.createUpdate("UPDATE users SET username = :u, email = :e, full_name = :f, is_guest = :guest WHERE id = :id")
          .bind("u", username).bind("e", email).bind("f", fullName).bind("guest", false).bind("id", id).execute();
      return Upgrade.DONE;
    });
  }

  /** A full user made by an administrator; fails with {@link IllegalArgumentException} when the name or email is taken. */
  Future<User> createUser(String username, String email, String fullName, List<String> roles) {
    long now = System.currentTimeMillis() / 1000;
    User user = new User(java.util.UUID.randomUUID().toString(), username, email, fullName, roles, false, now);
    return database.tx(h -> {
      if (h.createQuery("SELECT COUNT(*) FROM users WHERE username = :u OR LOWER(email) = LOWER(:e)").bind("u", username)
          .bind("e", email).mapTo(Integer.class).one() > 0) {
        throw new IllegalArgumentException("a user named '" + username + "' or with that email exists already");
      }
      h.createUpdate("INSERT INTO users (id, username, email, full_name, is_guest, roles, created_at, last_seen_at) "
              + "VALUES (:id, :username, :email, :name, :guest, :roles, :now, :now)")
          .bind("id", user.id()).bind("username", username).bind("email", email).bind("name", fullName).bind("guest", false)
          .bind("roles", String.join(",", roles)).bind("now", now).execute();
      return user;
    });
  }

  /** The user whose id, username or email (any case) this is. */
  Future<Optional<User>> findAny(String who) {
    return database.read(h -> h.createQuery("SELECT id, username, email, full_name, is_guest, roles, created_at FROM users "
            + "WHERE id = :w OR username = :w OR LOWER(email) = LOWER(:w)")
        .bind("w", who).map((rs, ctx) -> user(rs)).findFirst());
  }

  Future<Integer> setRoles(String id, List<String> roles) {
    return database.tx(h -> h.createUpdate("UPDATE users SET roles = :roles WHERE id = :id")
        .bind("roles", String.join(",", roles)).bind("id", id).execute());
  }

  /**
   * Gives the {@code admin} role to the full users with these emails (lower case): all of them, or
   * only the user {@code id} where it is not null (one who just signed in); how many changed.
   */
  Future<Integer> grantAdmins(List<String> emails, String id) {
    if (emails.isEmpty()) {
      return Future.succeededFuture(0);
    }
    return database.tx(h -> h.createUpdate("UPDATE users SET roles = :roles WHERE is_guest = :guest AND LOWER(email) IN (<emails>) "
            + "AND roles <> :roles" + (id == null ? "" : " AND id = :id"))
        .bind("roles", User.ROLE_USER + "," + User.ROLE_ADMIN).bind("guest", false).bindList("emails", emails).bind("id", id).execute());
  }

  /**
   * The local user of a provider's identity, made at its first sign-in: named after the identity's
   * preferred username or email (with a number added where that name is taken), its email kept
   * where no other user has it.
   */
  Future<User> signedIn(String issuer, String subject, String email, String name, String preferredUsername) {
    long now = System.currentTimeMillis() / 1000;
    return database.tx(h -> {
      Optional<String> linked = h.createQuery("SELECT user_id FROM user_identities WHERE issuer = :i AND subject = :s")
          .bind("i", issuer).bind("s", subject).mapTo(String.class).findOne();
      if (linked.isPresent()) {
        h.createUpdate("UPDATE users SET last_seen_at = :now WHERE id = :id").bind("now", now).bind("id", linked.get()).execute();
        return find(h, linked.get()).orElseThrow();
      }
      String base = preferredUsername != null ? preferredUsername : email != null ? email.substring(0, email.indexOf('@') < 0
          ? email.length() : email.indexOf('@')) : "user";
      base = base.replaceAll("[^A-Za-z0-9._-]", "-");
      String username = base;
      for (int n = 2; h.createQuery("SELECT COUNT(*) FROM users WHERE username = :u").bind("u", username).mapTo(Integer.class).one() > 0;
          n++) {
        username = base + "-" + n;
      }
      boolean emailFree = email != null && h.createQuery("SELECT COUNT(*) FROM users WHERE LOWER(email) = LOWER(:e)").bind("e", email)
          .mapTo(Integer.class).one() == 0;
      String id = java.util.UUID.randomUUID().toString();
      h.createUpdate("INSERT INTO users (id, username, email, full_name, is_guest, roles, created_at, last_seen_at) "
              + "VALUES (:id, :username, :email, :name, :guest, :roles, :now, :now)")
          .bind("id", id).bind("username", username).bind("email", emailFree ? email : null).bind("name", name)
          .bind("guest", false).bind("roles", User.ROLE_USER).bind("now", now).execute();
      h.createUpdate("INSERT INTO user_identities (issuer, subject, user_id, created_at) VALUES (:i, :s, :id, :now)")
          .bind("i", issuer).bind("s", subject).bind("id", id).bind("now", now).execute();
      return find(h, id).orElseThrow();
    });
  }

  /** The user was seen (signed in, refreshed): a guest is kept while it is seen. */
  Future<Integer> seen(String id) {
    return database.tx(h -> h.createUpdate("UPDATE users SET last_seen_at = :now WHERE id = :id")
        .bind("now", System.currentTimeMillis() / 1000).bind("id", id).execute());
  }

  /** Removes guests not seen since {@code before} (Unix seconds), with all they kept; the ids removed. */
  Future<List<String>> removeGuestsUnseenSince(long before) {
    return database.tx(h -> {
      List<String> ids = h.createQuery("SELECT id FROM users WHERE is_guest = :guest AND last_seen_at < :before")
          .bind("guest", true).bind("before", before).mapTo(String.class).list();
      for (String id : ids) {
        for (String table : List.of("user_settings", "api_keys")) {
          h.createUpdate("DELETE FROM " + table + " WHERE user_id = :id").bind("id", id).execute();
        }
        h.createUpdate("DELETE FROM refresh_tokens WHERE session_id IN (SELECT id FROM sessions WHERE user_id = :id)")
            .bind("id", id).execute();
        h.createUpdate("DELETE FROM sessions WHERE user_id = :id").bind("id", id).execute();
        h.createUpdate("DELETE FROM users WHERE id = :id").bind("id", id).execute();
      }
      return ids;
    });
  }

  Future<Optional<ObjectNode>> settings(String userId) {
    return database.read(h -> h.createQuery("SELECT settings FROM user_settings WHERE user_id = :id").bind("id", userId)
        .mapTo(String.class).findOne().map(UserStore::object));
  }

  Future<ObjectNode> saveSettings(String userId, ObjectNode settings) {
    long now = System.currentTimeMillis() / 1000;
    return database.tx(h -> {
      int updated = h.createUpdate("UPDATE user_settings SET settings = :s, updated_at = :now WHERE user_id = :id")
          .bind("s", settings.toString()).bind("now", now).bind("id", userId).execute();
      if (updated == 0) {
        h.createUpdate("INSERT INTO user_settings (user_id, settings, updated_at) VALUES (:id, :s, :now)")
            .bind("s", settings.toString()).bind("now", now).bind("id", userId).execute();
      }
      return settings;
    });
  }

  private static User user(ResultSet rs) throws SQLException {
    return new User(rs.getString("id"), rs.getString("username"), rs.getString("email"), rs.getString("full_name"),
        Arrays.asList(rs.getString("roles").split(",")), rs.getBoolean("is_guest"), rs.getLong("created_at"));
  }

  private static ObjectNode object(String json) {
    try {
      return (ObjectNode) Json.MAPPER.readTree(json);
    } catch (IOException e) {
      throw new UncheckedIOException("stored settings are not JSON", e);
    }
  }
}
