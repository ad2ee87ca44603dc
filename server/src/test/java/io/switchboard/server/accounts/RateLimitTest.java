package io.switchboard.server.accounts;

import static io.switchboard.server.accounts.AccountsHub.chat;
import static io.switchboard.server.accounts.AccountsHub.json;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.switchboard.server.ServerConfig;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** A person's requests and tokens per window, on both edges (the HTTP/1.1 fast path and the router), reached and reset. */
class RateLimitTest {

  private static final String EMBED = "{\"model\":\"chat\",\"input\":\"hello\"}";

  private static AccountsHub hub() {
    ServerConfig.RateLimits limits = new ServerConfig.RateLimits(Duration.ofSeconds(2), Map.of(
        "guest", new ServerConfig.RateLimits.Limit(3, null),
        "user", new ServerConfig.RateLimits.Limit(100, 10L)));
    return new AccountsHub(null, new ServerConfig.Accounts(null, null, null, null, null, null, null, null, null, limits));
  }

  @Test
  void aGuestsRequestsAreCountedRefusedPastTheLimitAndCountedAgainAfterTheWindow() throws Exception {
    try (AccountsHub hub = hub()) {
      String guest = hub.guest().path("access_token").asText();
      for (int remaining = 2; remaining >= 0; remaining--) {
        HttpResponse<String> answer = hub.call("POST", "/v1/chat/completions", guest, chat());
        assertEquals(200, answer.statusCode(), answer.body());
        assertEquals("3", answer.headers().firstValue("X-RateLimit-Limit").orElse(""));
        assertEquals(Integer.toString(remaining), answer.headers().firstValue("X-RateLimit-Remaining").orElse(""));
      }
      HttpResponse<String> refused = hub.call("POST", "/v1/chat/completions", guest, chat());
      assertEquals(429, refused.statusCode());
      assertEquals("rate_limit_exceeded", json(refused).at("/error/code").asText());
      long retry = Long.parseLong(refused.headers().firstValue("Retry-After").orElse("0"));
      assertTrue(retry >= 1 && retry <= 2, "Retry-After: " + retry);
      HttpResponse<String> throughRouter = hub.call("POST", "/v1/embeddings", guest, EMBED);
      assertEquals(429, throughRouter.statusCode(), "the router's edge counts the same: " + throughRouter.body());
      assertEquals("0", throughRouter.headers().firstValue("X-RateLimit-Remaining").orElse(""));

      Thread.sleep(2_100);
      HttpResponse<String> again = hub.call("POST", "/v1/embeddings", guest, EMBED);
      assertEquals(200, again.statusCode(), "a new window: " + again.body());
      assertEquals("2", again.headers().firstValue("X-RateLimit-Remaining").orElse(""));

      String other = hub.guest().path("access_token").asText();
      assertEquals(200, hub.call("POST", "/v1/chat/completions", other, chat()).statusCode(), "each person has their own count");
    }
  }

  @Test
  void tokensCountedFromUsageRefuseTheRequestAfterTheLimitIsSpent() {
    try (AccountsHub hub = hub()) {
      String guest = hub.guest().path("access_token").asText();
      hub.call("POST", "/auth/upgrade", guest, "{\"username\":\"tok\",\"email\":\"tok@example.com\"}");
      String key = json(hub.call("POST", "/auth/api-keys", guest, "{\"name\":\"k\"}")).path("key").asText();
      assertEquals(200, hub.call("POST", "/v1/chat/completions", key, chat()).statusCode(), "7 tokens of 10 (5 in, 2 out)");
      assertEquals(200, hub.call("POST", "/v1/chat/completions", key, chat()).statusCode(), "counted when it ended: 7 < 10 at its start");
      HttpResponse<String> refused = hub.call("POST", "/v1/chat/completions", key, chat());
      assertEquals(429, refused.statusCode(), refused.body());
      assertTrue(json(refused).at("/error/message").asText().contains("10 tokens"), refused.body());
    }
  }

  @Test
  void theServersOwnKeysHaveNoLimits() {
    try (AccountsHub hub = hub()) {
      for (int i = 0; i < 5; i++) {
        HttpResponse<String> answer = hub.call("POST", "/v1/chat/completions", AccountsHub.STATIC_KEY, chat());
        assertEquals(200, answer.statusCode());
        assertFalse(answer.headers().firstValue("X-RateLimit-Limit").isPresent());
      }
    }
  }
}
