package io.switchboard.server.accounts;

import static io.switchboard.server.accounts.AccountsHub.chat;
import static io.switchboard.server.accounts.AccountsHub.json;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.switchboard.server.ServerConfig;
import io.switchboard.server.TestDatabase;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/** A person's requests and tokens per window, on both edges (the HTTP/1.1 fast path and the router), reached and reset. */
@ParameterizedClass
@EnumSource(TestDatabase.class)
class RateLimitTest {

  private final TestDatabase database;

  RateLimitTest(TestDatabase database) {
    this.database = database;
  }

  private static final String EMBED = "{\"model\":\"chat\",\"input\":\"hello\"}";

  private AccountsHub hub() {
    ServerConfig.RateLimits limits = new ServerConfig.RateLimits(Duration.ofSeconds(2), Map.of(
        "guest", new ServerConfig.RateLimits.Limit(3, null),
        "user", new ServerConfig.RateLimits.Limit(100, 10L)));
    return new AccountsHub(database, new ServerConfig.Accounts(null, null, null, null, null, null, null, null, null, limits));
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
      String metrics = hub.call("GET", "/metrics", null, null).body();
      assertTrue(metrics.contains("switchboard_rate_limited_total{limit=\"role\",role=\"guest\"} 2.0"), "the operator sees both refusals");
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
  void anApiKeysOwnLimitNarrowsItsOwnersAndNeverWidensIt() {
    try (AccountsHub hub = hub()) {
      JsonNode guest = hub.guest();
      hub.call("POST", "/auth/upgrade", guest.path("access_token").asText(), "{\"username\":\"narrow\",\"email\":\"narrow@example.com\"}");
      String access = json(hub.call("POST", "/auth/refresh-token", guest.path("refresh_token").asText(), null)).path("access_token").asText();
      HttpResponse<String> made = hub.call("POST", "/auth/api-keys", access, "{\"name\":\"ci\",\"rate_limit\":{\"requests\":2,\"tokens\":5}}");
      assertEquals(201, made.statusCode(), made.body());
      assertEquals(2, json(made).at("/rate_limit/requests").asInt());
      assertEquals(5, json(made).at("/rate_limit/tokens").asInt(), "shown again in the list: "
          + hub.call("GET", "/auth/api-keys", access, null).body());
      assertEquals(5, json(hub.call("GET", "/auth/api-keys", access, null)).at("/items/0/rate_limit/tokens").asInt());
      String key = json(made).path("key").asText();

      HttpResponse<String> first = hub.call("POST", "/v1/chat/completions", key, chat());
      assertEquals(200, first.statusCode(), first.body());
      assertEquals("2", first.headers().firstValue("X-RateLimit-Limit").orElse(""), "the tighter limit is the one shown");
      assertEquals("1", first.headers().firstValue("X-RateLimit-Remaining").orElse(""));
      HttpResponse<String> second = hub.call("POST", "/v1/chat/completions", key, chat());
      assertEquals(429, second.statusCode(), "7 tokens spent of the key's 5: " + second.body());
      assertTrue(json(second).at("/error/message").asText().contains("this API key"), second.body());
      assertEquals(200, hub.call("POST", "/v1/chat/completions", access, chat()).statusCode(),
          "the owner's other credentials keep their role's limit: 7 tokens of 10 spent");
      HttpResponse<String> spent = hub.call("POST", "/v1/chat/completions", access, chat());
      assertEquals(429, spent.statusCode(), "the key's tokens counted against its owner too: " + spent.body());
      assertTrue(json(spent).at("/error/message").asText().contains("your role"), spent.body());
      String metrics = hub.call("GET", "/metrics", null, null).body();
      assertTrue(metrics.contains("switchboard_rate_limited_total{limit=\"api_key\",role=\"user\"} 1.0")
          && metrics.contains("switchboard_rate_limited_total{limit=\"role\",role=\"user\"} 1.0"), "which limit refused, in the metrics");

      assertEquals(400, hub.call("POST", "/auth/api-keys", access, "{\"name\":\"wide\",\"rate_limit\":{\"requests\":101}}").statusCode(),
          "above the role's 100 requests");
      assertEquals(400, hub.call("POST", "/auth/api-keys", access, "{\"name\":\"wide\",\"rate_limit\":{\"tokens\":11}}").statusCode(),
          "above the role's 10 tokens");
      for (String bad : new String[] {"{}", "{\"requests\":0}", "{\"rpm\":5}", "\"fast\"", "{\"tokens\":1.5}"}) {
        HttpResponse<String> refused = hub.call("POST", "/auth/api-keys", access, "{\"name\":\"bad\",\"rate_limit\":" + bad + "}");
        assertEquals(400, refused.statusCode(), bad + ": " + refused.body());
        assertTrue(json(refused).at("/error/message").asText().contains("rate_limit"), refused.body());
      }
      assertEquals(1, json(hub.call("GET", "/auth/api-keys", access, null)).path("items").size(), "no key was made by a refused request");
    }
  }

  @Test
  void tokensOfEmbeddingsSplitOverBatchesAreCountedToo() {
    ServerConfig.RateLimits limits = new ServerConfig.RateLimits(Duration.ofSeconds(30), Map.of(
        "guest", new ServerConfig.RateLimits.Limit(100, 10L)));
    try (AccountsHub hub = new AccountsHub(database, new ServerConfig.Accounts(null, null, null, null, null, null, null, null, null,
        limits), 1)) {
      String guest = hub.guest().path("access_token").asText();
      String twoInputs = "{\"model\":\"chat\",\"input\":[\"hello\",\"world!\"]}";
      HttpResponse<String> split = hub.call("POST", "/v1/embeddings", guest, twoInputs);
      assertEquals(200, split.statusCode(), split.body());
      assertEquals(11, json(split).at("/usage/prompt_tokens").asInt(), "one input a batch, put together");
      HttpResponse<String> refused = hub.call("POST", "/v1/embeddings", guest, twoInputs);
      assertEquals(429, refused.statusCode(), "11 tokens of the guest's 10 spent: " + refused.body());
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
