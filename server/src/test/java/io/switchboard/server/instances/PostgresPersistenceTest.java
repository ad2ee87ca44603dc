package io.switchboard.server.instances;

import static io.switchboard.server.instances.InstanceHarness.eventually;
import static io.switchboard.server.instances.InstanceHarness.json;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.switchboard.server.TestPostgres;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The same persistence on PostgreSQL ({@link TestPostgres}).
 */
class PostgresPersistenceTest {

  @Test
  void instancesAreKeptInPostgresAcrossRestarts() throws Exception {
    TestPostgres.inSchema("switchboard_test_", url -> {
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
    });
  }
}
