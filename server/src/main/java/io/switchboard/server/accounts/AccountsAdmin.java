package io.switchboard.server.accounts;

import io.switchboard.server.ServerConfig;
import io.switchboard.server.store.Database;
import io.switchboard.vertx.Blocking;
import io.vertx.core.Vertx;
import java.nio.file.Files;
import java.util.List;

/**
 * What {@code switchboard admin} does, straight on the server's database (its data directory or
 * {@code database_url}), with or without a server running: make users, give roles, make API keys.
 * A running server sees a new role at the user's next sign-in or token refresh, and a key made here
 * after its restart.
 */
public final class AccountsAdmin implements AutoCloseable {

  private final Vertx vertx;
  private final Database database;
  private final ServerConfig.Accounts settings;
  private final UserStore users;
  private final ApiKeys keys;

  private AccountsAdmin(Vertx vertx, Database database, ServerConfig.Accounts settings) {
    this.vertx = vertx;
    this.database = database;
    this.settings = settings;
    this.users = new UserStore(database);
    this.keys = new ApiKeys(database, settings);
  }

  /** Opens (and migrates) the database the server of {@code config} uses. */
  public static AccountsAdmin open(ServerConfig config) {
    Vertx vertx = Vertx.vertx();
    try {
      Files.createDirectories(config.dataDir());
      return new AccountsAdmin(vertx, Database.open(vertx, config.databaseUrl(), config.dataDir()), config.accounts());
    } catch (Exception e) {
      vertx.close();
      throw new IllegalArgumentException(e.getMessage(), e);
    }
  }

  public User createUser(String username, String email, String fullName, boolean admin) {
    return Blocking.await(users.createUser(username, email, fullName,
        admin ? List.of(User.ROLE_USER, User.ROLE_ADMIN) : List.of(User.ROLE_USER)));
  }

  /** Gives {@code who} (an id, username or email) the role, {@code user} or {@code admin}; the user as it is now. */
  public User grant(String who, String role) {
    User user = find(who);
    List<String> roles = switch (role) {
      case User.ROLE_ADMIN -> List.of(User.ROLE_USER, User.ROLE_ADMIN);
      case User.ROLE_USER -> List.of(User.ROLE_USER);
      default -> throw new IllegalArgumentException("a role is user or admin, not '" + role + "'");
    };
    Blocking.await(users.setRoles(user.id(), roles));
    return find(who);
  }

  /** A key just made: its secret ({@code key}) is shown this once. */
  public record NewKey(String id, String key, String name, long expiresAt) {}

  /**
   * Makes an API key for {@code who}, living {@code days} at most {@code accounts.api_key_max_days},
   * with its own limit of requests and tokens per window where they are not null; its secret is in
   * the answer only.
   */
  public NewKey createKey(String who, String name, int days, Integer requests, Long tokens) {
    if (days < 1 || name.isBlank() || name.length() > 100) {
      throw new IllegalArgumentException("a key needs a name of 1-100 characters and at least one day");
    }
    if ((requests != null && requests < 1) || (tokens != null && tokens < 1)) {
      throw new IllegalArgumentException("a key's limits are at least 1");
    }
    ServerConfig.RateLimits.Limit limit = ServerConfig.RateLimits.Limit.ofNullable(requests, tokens);
    try {
      ApiKeys.Created made = Blocking.await(keys.create(find(who), name, Math.min(days, settings.apiKeyMaxDays()), limit));
      return new NewKey(made.id(), made.key(), made.name(), made.expiresAt());
    } catch (ApiKeys.Refused e) {
      throw new IllegalArgumentException(e.getMessage(), e);
    }
  }

  private User find(String who) {
    return Blocking.await(users.findAny(who)).orElseThrow(() -> new IllegalArgumentException("no user '" + who + "'"));
  }

  @Override
  public void close() {
    database.close();
    vertx.close().await();
  }
}
