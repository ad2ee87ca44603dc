package io.switchboard.server;

/**
 * The database a test's server keeps its state in, for tests that run on both the server supports:
 * {@code @ParameterizedClass @EnumSource(TestDatabase.class)}, and {@link #open} one for each server.
 */
public enum TestDatabase {
  /** The default: a file in the server's data directory. */
  SQLITE,
  /** {@link TestPostgres}, in a schema of the test's own. */
  POSTGRESQL;

  /**
   * One database of this kind; closing it drops what the test kept there.
   *
   * @param url the server's {@code database_url}: null for SQLite, in its data directory
   */
  public record Opened(String url, TestPostgres.Schema schema) implements AutoCloseable {
    @Override
    public void close() {
      if (schema != null) {
        schema.close();
      }
    }
  }

  public Opened open() {
    if (this == SQLITE) {
      return new Opened(null, null);
    }
    TestPostgres.Schema schema = TestPostgres.schema("switchboard_test_");
    return new Opened(schema.url(), schema);
  }

  @Override
  public String toString() {
    return this == SQLITE ? "SQLite" : "PostgreSQL";
  }
}
