package io.switchboard.server.accounts;

import static io.switchboard.server.accounts.AccountsHub.json;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import io.switchboard.server.ServerConfig;
import io.switchboard.server.TestPostgres;
import org.junit.jupiter.api.Test;

/**
 * The accounts on PostgreSQL ({@link TestPostgres}): the guest's first minutes, and keys, sessions
 * and signing keys kept across a restart.
 */
class AccountsPostgresTest {

  @Test
  void accountsAreKeptInPostgres() throws Exception {
    TestPostgres.inSchema("switchboard_accounts_", url -> {
      String secret;
      String refresh;
      try (AccountsHub hub = new AccountsHub(url, ServerConfig.Accounts.defaults())) {
        GuestFlow.run(hub);
        JsonNode guest = hub.guest();
        String access = guest.path("access_token").asText();
        assertEquals(200, hub.call("POST", "/auth/upgrade", access, "{\"username\":\"pg-user\",\"email\":\"pg@example.com\"}")
            .statusCode());
        secret = json(hub.call("POST", "/auth/api-keys", access, "{\"name\":\"kept\"}")).path("key").asText();
        refresh = guest.path("refresh_token").asText();
      }
      try (AccountsHub hub = new AccountsHub(url, ServerConfig.Accounts.defaults())) {
        assertEquals("pg-user", json(hub.call("GET", "/auth/me", secret, null)).path("username").asText(), "the key, after a restart");
        JsonNode next = json(hub.call("POST", "/auth/refresh-token", null, "{\"refresh_token\":\"" + refresh + "\"}"));
        assertEquals(200, hub.call("GET", "/auth/me", next.path("access_token").asText(), null).statusCode(),
            "the session, and a token signed by the key kept");
      }
    });
  }
}
