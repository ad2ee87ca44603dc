package io.switchboard.server.accounts;

import static io.switchboard.server.accounts.AccountsHub.json;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.switchboard.server.ServerConfig;
import io.switchboard.server.TestDatabase;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/** Administrators: made on the database before a server runs, or named by email in the configuration. */
@ParameterizedClass
@EnumSource(TestDatabase.class)
class AdminRoleTest {

  private final TestDatabase database;

  AdminRoleTest(TestDatabase database) {
    this.database = database;
  }

  @Test
  void anAdminMadeOnTheDatabaseManagesAndAUserMayNot() {
    Path data = AccountsHub.tempDir();
    String adminKey;
    String userKey;
    try (TestDatabase.Opened db = database.open()) {
      try (AccountsAdmin admin = AccountsAdmin.open(AccountsHub.config(data, db.url(), ServerConfig.Accounts.defaults(), List.of()))) {
        assertTrue(admin.createUser("root", "root@example.com", "Root", true).roles().contains("admin"));
        admin.createUser("ann", "ann@example.com", null, false);
        adminKey = admin.createKey("root@example.com", "ops", 30, null, null).key();
        userKey = admin.createKey("ann", "laptop", 9999, null, null).key();
        assertThrows(IllegalArgumentException.class, () -> admin.createUser("root", "other@example.com", null, false), "taken");
        assertThrows(IllegalArgumentException.class, () -> admin.grant("nobody", "admin"));
        assertThrows(IllegalArgumentException.class, () -> admin.grant("ann", "owner"));
      }
      try (AccountsHub hub = new AccountsHub(data, db, ServerConfig.Accounts.defaults())) {
        assertEquals(200, hub.call("GET", "/api/v1/instances", adminKey, null).statusCode(), "an admin manages instances");
        assertEquals(200, hub.call("GET", "/v1/admin/mcp/tools", adminKey, null).statusCode());
        assertEquals(403, hub.call("GET", "/api/v1/instances", userKey, null).statusCode(), "a user may not");
        assertEquals(403, hub.call("GET", "/v1/admin/mcp/tools", userKey, null).statusCode());
        assertEquals(200, hub.call("POST", "/v1/chat/completions", userKey, AccountsHub.chat()).statusCode(), "but may chat");
        for (String[] operation : new String[][] {{"GET", "/api/state"}, {"GET", "/api/v1/metrics"},
            {"POST", "/api/llm/workers/local/drain"}}) {
          assertEquals(403, hub.call(operation[0], operation[1], userKey, null).statusCode(),
              "the server's running state and its workers are the operators': " + operation[1]);
        }
        assertEquals(200, hub.call("GET", "/api/state", adminKey, null).statusCode(), "an admin sees the dashboard's state");
        assertEquals(200, hub.call("GET", "/api/v1/metrics", AccountsHub.STATIC_KEY, null).statusCode(), "so do the server's keys");
        JsonNode keys = json(hub.call("GET", "/auth/api-keys", userKey, null));
        assertTrue(keys.at("/items/0/expires_at").asLong() - keys.at("/items/0/created_at").asLong() <= 90L * 86_400,
            "no key outlives accounts.api_key_max_days");
      }
    }
  }

  @Test
  void anEmailNamedInTheConfigurationIsAnAdminOnceItsOwnerSignsUp() {
    ServerConfig.Accounts settings = new ServerConfig.Accounts(null, null, null, null, null, null, null, List.of("Boss@Example.com"), null, null);
    try (AccountsHub hub = new AccountsHub(database, settings)) {
      JsonNode guest = hub.guest();
      String access = guest.path("access_token").asText();
      assertEquals(403, hub.call("GET", "/api/v1/instances", access, null).statusCode(), "a guest is no admin");
      JsonNode upgraded = json(hub.call("POST", "/auth/upgrade", access, "{\"username\":\"boss\",\"email\":\"boss@example.com\"}"));
      assertTrue(upgraded.at("/user/roles").toString().contains("admin"), upgraded.toString());
      JsonNode next = json(hub.call("POST", "/auth/refresh-token", null, "{\"refresh_token\":\"" + guest.path("refresh_token").asText()
          + "\"}"));
      assertEquals(200, hub.call("GET", "/api/v1/instances", next.path("access_token").asText(), null).statusCode(),
          "the role is in the tokens from the next refresh on");
    }
  }
}
