package io.switchboard.server;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.concurrent.ThreadLocalRandom;

/**
 * The PostgreSQL of this machine and of CI (127.0.0.1:5432, database {@code test}), in a schema of
 * the test's own that is dropped afterwards; a test is skipped where none runs. Set
 * {@code SWITCHBOARD_TEST_POSTGRES} to another JDBC URL to use another server.
 */
public final class TestPostgres {

  private static final String SERVER = System.getenv().getOrDefault("SWITCHBOARD_TEST_POSTGRES",
      "jdbc:postgresql://127.0.0.1:5432/test?user=postgres");

  /** What runs in the schema, given the JDBC URL that opens it. */
  public interface Body {
    void run(String url) throws Exception;
  }

  /** A schema of a test's own; closing it drops it with everything in it. */
  public record Schema(String name, String url) implements AutoCloseable {
    @Override
    public void close() {
      try (Connection admin = DriverManager.getConnection(SERVER); Statement sql = admin.createStatement()) {
        sql.execute("DROP SCHEMA " + name + " CASCADE");
      } catch (SQLException e) {
        throw new IllegalStateException("could not drop " + name + ": " + e.getMessage(), e);
      }
    }
  }

  private TestPostgres() {}

  /** Makes a new schema named {@code prefix} and a random suffix; skips the test where no PostgreSQL runs. */
  public static Schema schema(String prefix) {
    String name = prefix + Long.toHexString(ThreadLocalRandom.current().nextLong() & Long.MAX_VALUE);
    try (Connection admin = DriverManager.getConnection(SERVER); Statement sql = admin.createStatement()) {
      sql.execute("CREATE SCHEMA " + name);
    } catch (SQLException e) {
      assumeTrue(false, "no PostgreSQL at " + SERVER + ": " + e.getMessage());
    }
    return new Schema(name, SERVER + "&currentSchema=" + name);
  }

  public static void inSchema(String prefix, Body body) throws Exception {
    try (Schema schema = schema(prefix)) {
      body.run(schema.url());
    }
  }
}
