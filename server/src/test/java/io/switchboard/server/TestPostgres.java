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

  private TestPostgres() {}

  public static void inSchema(String prefix, Body body) throws Exception {
    String schema = prefix + Long.toHexString(ThreadLocalRandom.current().nextLong() & Long.MAX_VALUE);
    Connection admin;
    try {
      admin = DriverManager.getConnection(SERVER);
    } catch (SQLException e) {
      assumeTrue(false, "no PostgreSQL at " + SERVER + ": " + e.getMessage());
      return;
    }
    try (admin; Statement sql = admin.createStatement()) {
      sql.execute("CREATE SCHEMA " + schema);
      try {
        body.run(SERVER + "&currentSchema=" + schema);
      } finally {
        sql.execute("DROP SCHEMA " + schema + " CASCADE");
      }
    }
  }
}
