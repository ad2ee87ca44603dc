package io.switchboard.cli;

import io.switchboard.server.ServerConfig;
import io.switchboard.server.accounts.AccountsAdmin;
import io.switchboard.server.accounts.User;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code switchboard admin}: accounts made and changed straight on the server's database, for the
 * first administrator and for scripts. It reads the server's configuration (file, environment,
 * {@code --data-dir}, {@code --database-url}) to find the database.
 */
@Command(
    name = "admin",
    mixinStandardHelpOptions = true,
    versionProvider = Main.Version.class,
    description = "Make users, give roles and make API keys on the server's database (a running server sees them "
        + "at the user's next sign-in, and a new key after its restart).",
    subcommands = {AdminCommand.CreateUser.class, AdminCommand.Grant.class, AdminCommand.CreateKey.class})
final class AdminCommand implements Runnable {

  @Spec
  picocli.CommandLine.Model.CommandSpec spec;

  @Option(names = "--config", description = "The server's YAML configuration file (env CONFIG_FILE).", scope = picocli.CommandLine.ScopeType.INHERIT)
  Path config;

  @Option(names = "--data-dir", description = "The server's data directory (default ./data).", scope = picocli.CommandLine.ScopeType.INHERIT)
  Path dataDir;

  @Option(names = "--database-url", paramLabel = "JDBC_URL", description = "The server's database, when PostgreSQL.",
      scope = picocli.CommandLine.ScopeType.INHERIT)
  String databaseUrl;

  @Override
  public void run() {
    spec.commandLine().usage(System.out);
  }

  AccountsAdmin open(Map<String, String> env) {
    return AccountsAdmin.open(Flags.load(ServerConfig.class, this, config, env, Map.of()));
  }

  static String describe(User user) {
    return user.id() + " " + user.username() + (user.email() == null ? "" : " <" + user.email() + ">") + " roles " + user.roles();
  }

  /** What each subcommand shares: the database it opens, and the line it prints. */
  abstract static class Action implements Callable<Integer> {
    @picocli.CommandLine.ParentCommand
    AdminCommand admin;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    /** Does the work and says what came of it. */
    abstract String act(AccountsAdmin accounts);

    @Override
    public Integer call() {
      try (AccountsAdmin accounts = admin.open(System.getenv())) {
        spec.commandLine().getOut().println(act(accounts));
      }
      return 0;
    }
  }

  @Command(name = "create-user", mixinStandardHelpOptions = true, description = "Make a full user (not a guest).")
  static final class CreateUser extends Action {
    @Option(names = "--username", required = true)
    String username;

    @Option(names = "--email", required = true)
    String email;

    @Option(names = "--full-name")
    String fullName;

    @Option(names = "--admin", description = "Give the user the admin role.")
    boolean asAdmin;

    @Override
    String act(AccountsAdmin accounts) {
      return describe(accounts.createUser(username, email, fullName, asAdmin));
    }
  }

  @Command(name = "grant", mixinStandardHelpOptions = true, description = "Give a user a role: admin, or user (which takes admin away).")
  static final class Grant extends Action {
    @Parameters(index = "0", paramLabel = "WHO", description = "The user's id, username or email.")
    String who;

    @Parameters(index = "1", paramLabel = "ROLE", description = "admin or user.")
    String role;

    @Override
    String act(AccountsAdmin accounts) {
      return describe(accounts.grant(who, role));
    }
  }

  @Command(name = "create-key", mixinStandardHelpOptions = true, description = "Make an API key for a user; its secret is printed this once.")
  static final class CreateKey extends Action {
    @Parameters(index = "0", paramLabel = "WHO", description = "The user's id, username or email.")
    String who;

    @Option(names = "--name", required = true)
    String name;

    @Option(names = "--days", description = "How long it lives (default and most: accounts.api_key_max_days).")
    Integer days;

    @Option(names = "--requests", description = "The key's own limit of requests per rate-limit window, under its owner's role's.")
    Integer requests;

    @Option(names = "--tokens", description = "The key's own limit of tokens per rate-limit window, under its owner's role's.")
    Long tokens;

    @Override
    String act(AccountsAdmin accounts) {
      AccountsAdmin.NewKey key = accounts.createKey(who, name, days == null ? Integer.MAX_VALUE : days, requests, tokens);
      spec.commandLine().getErr().println("key " + key.id() + " '" + key.name() + "' until "
          + java.time.Instant.ofEpochSecond(key.expiresAt()) + "; it is not shown again");
      return key.key();
    }
  }
}
