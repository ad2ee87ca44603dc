package io.switchboard.server.accounts;

import static io.switchboard.server.accounts.AccountsHub.chat;
import static io.switchboard.server.accounts.AccountsHub.json;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.crypto.ECDSASigner;
import com.nimbusds.jose.jwk.Curve;
import com.nimbusds.jose.jwk.ECKey;
import com.nimbusds.jose.jwk.gen.ECKeyGenerator;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import io.switchboard.server.ServerConfig;
import io.switchboard.server.TestDatabase;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Date;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/** Guests, tokens, profiles, settings and API keys, as a client of the server meets them. */
@ParameterizedClass
@EnumSource(TestDatabase.class)
class AccountsTest {

  private final TestDatabase database;

  AccountsTest(TestDatabase database) {
    this.database = database;
  }

  @Test
  void aGuestSignsInChatsAndKeepsItsSettings() {
    try (AccountsHub hub = new AccountsHub(database)) {
      GuestFlow.run(hub);
    }
  }

  @Test
  void keysSessionsAndSigningKeysOutliveARestart() {
    Path data = AccountsHub.tempDir();
    try (TestDatabase.Opened db = database.open()) {
      String secret;
      String refresh;
      try (AccountsHub hub = new AccountsHub(data, db, ServerConfig.Accounts.defaults())) {
        JsonNode guest = hub.guest();
        String access = guest.path("access_token").asText();
        assertEquals(200, hub.call("POST", "/auth/upgrade", access, "{\"username\":\"kept\",\"email\":\"kept@example.com\"}")
            .statusCode());
        secret = json(hub.call("POST", "/auth/api-keys", access, "{\"name\":\"kept\"}")).path("key").asText();
        refresh = guest.path("refresh_token").asText();
      }
      try (AccountsHub hub = new AccountsHub(data, db, ServerConfig.Accounts.defaults())) {
        assertEquals("kept", json(hub.call("GET", "/auth/me", secret, null)).path("username").asText(), "the key, after a restart");
        JsonNode next = json(hub.call("POST", "/auth/refresh-token", null, "{\"refresh_token\":\"" + refresh + "\"}"));
        assertEquals(200, hub.call("GET", "/auth/me", next.path("access_token").asText(), null).statusCode(),
            "the session, and a token signed by the key kept");
      }
    }
  }

  @Test
  void aRefreshTokenIsGoodOnceAndItsReuseEndsTheSession() {
    try (AccountsHub hub = new AccountsHub(database)) {
      JsonNode guest = hub.guest();
      String first = guest.path("refresh_token").asText();
      HttpResponse<String> rotated = hub.call("POST", "/auth/refresh-token", null, "{\"refresh_token\":\"" + first + "\"}");
      assertEquals(200, rotated.statusCode(), rotated.body());
      JsonNode next = json(rotated);
      assertFalse(next.path("refresh_token").asText().equals(first), "a new refresh token each time");
      assertEquals(200, hub.call("GET", "/auth/me", next.path("access_token").asText(), null).statusCode());
      HttpResponse<String> asBearer = hub.call("GET", "/auth/refresh-token", next.path("refresh_token").asText(), null);
      assertEquals(200, asBearer.statusCode(), "as Jan's web app sends it: " + asBearer.body());
      String current = json(asBearer).path("access_token").asText();

      HttpResponse<String> reused = hub.call("POST", "/auth/refresh-token", null, "{\"refresh_token\":\"" + first + "\"}");
      assertEquals(401, reused.statusCode());
      assertTrue(reused.body().contains("used before"), reused.body());
      assertEquals(401, hub.call("GET", "/auth/me", current, null).statusCode(), "the whole session ended, its access token too");
      assertEquals(401, hub.call("POST", "/auth/refresh-token", null, "{\"refresh_token\":\"" + json(asBearer).path("refresh_token")
          .asText() + "\"}").statusCode(), "and its latest refresh token");
      assertEquals(401, hub.call("POST", "/auth/refresh-token", null, "{\"refresh_token\":\"rt_unknown\"}").statusCode());
      assertEquals(401, hub.call("POST", "/auth/refresh-token", null, "{}").statusCode(), "no refresh token, no credential");
    }
  }

  @Test
  void logoutAndRevokeRefuseTheTokenAtOnce() {
    try (AccountsHub hub = new AccountsHub(database)) {
      String access = hub.guest().path("access_token").asText();
      assertEquals(200, hub.call("POST", "/v1/chat/completions", access, chat()).statusCode());
      assertEquals(200, hub.call("GET", "/auth/logout", access, null).statusCode());
      assertEquals(401, hub.call("POST", "/v1/chat/completions", access, chat()).statusCode(), "long before it would expire");

      JsonNode other = hub.guest();
      String otherAccess = other.path("access_token").asText();
      assertEquals(200, hub.call("POST", "/auth/revoke", otherAccess, "{\"refresh_token\":\"" + other.path("refresh_token").asText()
          + "\"}").statusCode());
      assertEquals(401, hub.call("GET", "/auth/me", otherAccess, null).statusCode());
    }
  }

  @Test
  void forgedTamperedAndExpiredTokensAreRefused() throws Exception {
    try (AccountsHub hub = new AccountsHub(database, new ServerConfig.Accounts(true, Duration.ofSeconds(1), Duration.ofDays(1), null,
        null, null, null, null, null, null))) {
      JsonNode guest = hub.guest();
      String access = guest.path("access_token").asText();
      String[] parts = access.split("\\.");
      String tampered = parts[0] + "." + parts[1].substring(0, parts[1].length() - 2) + (parts[1].endsWith("A") ? "B" : "A")
          + parts[1].charAt(parts[1].length() - 1) + "." + parts[2];
      assertEquals(401, hub.call("GET", "/auth/me", tampered, null).statusCode());

      ECKey stranger = new ECKeyGenerator(Curve.P_256).keyID(SignedJWT.parse(access).getHeader().getKeyID()).generate();
      SignedJWT forged = new SignedJWT(new JWSHeader.Builder(JWSAlgorithm.ES256).keyID(stranger.getKeyID()).build(),
          new JWTClaimsSet.Builder().issuer("switchboard").subject(guest.path("user_id").asText()).claim("sid", "ses_x")
              .expirationTime(new Date(System.currentTimeMillis() + 60_000)).claim("roles", List.of("user", "admin")).build());
      forged.sign(new ECDSASigner(stranger));
      assertEquals(401, hub.call("GET", "/auth/me", forged.serialize(), null).statusCode(), "signed by a key not the server's");

      JsonNode jwks = json(hub.call("GET", "/.well-known/jwks.json", null, null));
      assertEquals(1, jwks.path("keys").size());
      assertEquals("EC", jwks.at("/keys/0/kty").asText());
      assertFalse(jwks.at("/keys/0").has("d"), "the public half only");

      assertEquals(200, hub.call("GET", "/auth/me", access, null).statusCode());
      Thread.sleep(1_500);
      assertEquals(401, hub.call("GET", "/auth/me", access, null).statusCode(), "expired");
    }
  }

  @Test
  void apiKeysAreShownOnceWorkAsKeysAndStopOnDelete() {
    try (AccountsHub hub = new AccountsHub(database)) {
      String guest = hub.guest().path("access_token").asText();
      assertEquals(403, hub.call("POST", "/auth/api-keys", guest, "{\"name\":\"ci\"}").statusCode(), "guests cannot make keys");
      assertEquals(200, hub.call("POST", "/auth/upgrade", guest, "{\"username\":\"ada\",\"email\":\"ada@example.com\"}").statusCode());

      HttpResponse<String> made = hub.call("POST", "/auth/api-keys", guest, "{\"name\":\"ci\",\"expires_in_days\":7}");
      assertEquals(201, made.statusCode(), made.body());
      JsonNode key = json(made);
      String secret = key.path("key").asText();
      assertTrue(secret.startsWith("sk_live_") && secret.length() == 56, secret);
      assertEquals(secret.substring(secret.length() - 4), key.path("suffix").asText());
      JsonNode listed = json(hub.call("GET", "/auth/api-keys", guest, null));
      assertEquals(1, listed.path("items").size());
      assertFalse(listed.toString().contains(secret), "the secret is never shown again");

      HttpResponse<String> byKey = hub.call("POST", "/v1/chat/completions", secret, chat());
      assertEquals(200, byKey.statusCode(), byKey.body());
      assertEquals("api_key", byKey.headers().firstValue("X-Auth-Method").orElse(""));
      assertEquals(1, hub.openai(secret).chat().completions().create(ChatCompletionCreateParams.builder().model("chat")
          .addUserMessage("hi").maxCompletionTokens(2).build()).choices().size(), "the OpenAI SDK with a user's key");
      assertEquals("ada", json(hub.call("GET", "/v1/users/me", secret, null)).path("username").asText());

      String stranger = hub.guest().path("access_token").asText();
      assertEquals(0, json(hub.call("GET", "/auth/api-keys", stranger, null)).path("items").size(), "another user sees none");
      assertEquals(404, hub.call("DELETE", "/auth/api-keys/" + key.path("id").asText(), stranger, null).statusCode());
      assertEquals(200, hub.call("POST", "/v1/chat/completions", secret, chat()).statusCode(), "still in force");

      assertEquals(204, hub.call("DELETE", "/auth/api-keys/" + key.path("id").asText(), guest, null).statusCode());
      assertEquals(401, hub.call("POST", "/v1/chat/completions", secret, chat()).statusCode(), "refused on the very next request");
      assertEquals(400, hub.call("POST", "/auth/api-keys", guest, "{\"name\":\"x\",\"expires_in_days\":9999}").statusCode());
    }
  }

  @Test
  void upgradeKeepsTheIdAndRefusesATakenNameOrEmail() {
    try (AccountsHub hub = new AccountsHub(database)) {
      JsonNode first = hub.guest();
      String token = first.path("access_token").asText();
      hub.call("PATCH", "/v1/users/me/settings", token, "{\"preferences\":{\"selected_model\":\"chat\"}}");
      HttpResponse<String> upgraded = hub.call("POST", "/auth/upgrade", token,
          "{\"username\":\"grace\",\"email\":\"grace@example.com\",\"full_name\":\"Grace H\"}");
      assertEquals(200, upgraded.statusCode(), upgraded.body());
      JsonNode user = json(upgraded).path("user");
      assertEquals(first.path("user_id").asText(), user.path("id").asText(), "same id");
      assertFalse(user.path("is_guest").asBoolean());
      assertEquals("chat", json(hub.call("GET", "/v1/users/me/settings", token, null)).at("/preferences/selected_model").asText(),
          "its data kept");
      assertEquals(409, hub.call("POST", "/auth/upgrade", token, "{\"username\":\"grace2\",\"email\":\"g2@example.com\"}").statusCode(),
          "not a guest any more");

      String second = hub.guest().path("access_token").asText();
      assertEquals(409, hub.call("POST", "/auth/upgrade", second, "{\"username\":\"grace\",\"email\":\"other@example.com\"}").statusCode());
      assertEquals(409, hub.call("POST", "/auth/upgrade", second, "{\"username\":\"other\",\"email\":\"GRACE@example.com\"}").statusCode());
      assertEquals(400, hub.call("POST", "/auth/upgrade", second, "{\"username\":\"other\"}").statusCode(), "email is required");
    }
  }

  @Test
  void theServersOwnKeysAreNotAPersonsAndGuestsCanBeTurnedOff() {
    try (AccountsHub hub = new AccountsHub(database, new ServerConfig.Accounts(false, null, null, null, null, null, null, null, null, null))) {
      assertEquals(403, hub.call("GET", "/auth/me", AccountsHub.STATIC_KEY, null).statusCode());
      assertEquals(401, hub.call("GET", "/auth/me", null, null).statusCode());
      assertEquals(401, hub.call("GET", "/auth/me", "eyJnot.a.token", null).statusCode());
      assertEquals(403, hub.call("POST", "/auth/guest-login", null, null).statusCode(), "accounts.guest_login: false");
      assertEquals(200, hub.call("POST", "/v1/chat/completions", AccountsHub.STATIC_KEY, chat()).statusCode(), "keys work as before");
    }
  }
}
