package io.switchboard.server.instances;

import static io.switchboard.server.instances.InstanceHarness.eventually;
import static io.switchboard.server.instances.InstanceHarness.json;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.Test;

/**
 * The same persistence on PostgreSQL (127.0.0.1:5432, database {@code test}, as on CI), in a schema
 * of the test's own that it drops afterwards. Set {@code SWITCHBOARD_TEST_POSTGRES} to another JDBC URL to
 * use another server.
 */
class PostgresPersistenceTest {

  private static final String SERVER = System.getenv().getOrDefault("SWITCHBOARD_TEST_POSTGRES",
      "jdbc:postgresql://127.0.0.1:5432/test?user=postgres");

  @Test
  void instancesAreKeptInPostgresAcrossRestarts() throws SQLException {
    String schema = "switchboard_test_" + Long.toHexString(ThreadLocalRandom.current().nextLong() & Long.MAX_VALUE);
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
        String url = SERVER + "&currentSchema=" + schema;
        try (InstanceHarness hub = new InstanceHarness(InstanceHarness.tempDir(), url, InstanceHarness.settings(-1, true),
            List.of(), List.of(), null)) {
          String body = "{\"model\":\"m.gguf\",\"command_override\":\"" + hub.fakeLlamaServer() + "\",\"auto_start\":true}";
          assertEquals(201, hub.call("POST", "/api/v1/instances/pg-kept", body).statusCode());
        }
        try (InstanceHarness hub = new InstanceHarness(InstanceHarness.tempDir(), url, InstanceHarness.settings(-1, true),
            List.of(), List.of(), null)) {
          assertEquals("pg-kept", json(hub.call("GET", "/api/v1/instances", null)).get(0).path("name").asText());
          eventually("pg-kept auto-starts", 20, () -> hub.status("pg-kept").equals("running"));
        }
      } finally {
        sql.execute("DROP SCHEMA " + schema + " CASCADE");
      }
    }
  }
}
