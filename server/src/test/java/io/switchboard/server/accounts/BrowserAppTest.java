package io.switchboard.server.accounts;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.switchboard.server.Chromium;
import io.switchboard.server.TestDatabase;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A web app served from another origin (as Jan's web app is) calls the API from a browser: CORS
 * lets the pages of the origins in {@code cors_origins} in, on both edges, and no others.
 */
class BrowserAppTest {

  private final Vertx vertx = Vertx.vertx();
  private HttpServer app;
  private HttpServer stranger;
  private AccountsHub hub;

  /** A page of the web app: it waits for the test to run its script. */
  private HttpServer page() {
    return vertx.createHttpServer().requestHandler(request -> request.response().putHeader("Content-Type", "text/html")
        .end("<!doctype html><html><body>waiting</body></html>")).listen(0, "127.0.0.1").await();
  }

  @BeforeEach
  void start() {
    app = page();
    stranger = page();
    hub = new AccountsHub(TestDatabase.SQLITE, List.of(origin(app)));
  }

  @AfterEach
  void stop() {
    hub.close();
    vertx.close().await();
  }

  private static String origin(HttpServer server) {
    return "http://127.0.0.1:" + server.actualPort();
  }

  @Test
  void aPageOfAnAllowedOriginSignsAGuestInAndChatsAndOthersCannotRead() throws Exception {
    assumeTrue(Chromium.installed(), "Debian's chromium is not installed (.ci/run installs it)");
    String api = "http://127.0.0.1:" + hub.server.port();
    String script = """
        (async () => {
          try {
            const login = await fetch("%1$s/auth/guest-login", {method: "POST"});
            const tokens = await login.json();
            const chat = await fetch("%1$s/v1/chat/completions", {method: "POST",
                headers: {"Authorization": "Bearer " + tokens.access_token, "Content-Type": "application/json"},
                body: JSON.stringify({model: "chat", max_tokens: 2, messages: [{role: "user", content: "hi"}]})});
            const answer = await chat.json();
            document.body.innerText = "answered " + answer.choices[0].message.content + " remaining "
                + chat.headers.get("X-RateLimit-Remaining");
          } catch (e) {
            document.body.innerText = "refused " + e;
          }
        })()""".formatted(api);
    try (Chromium browser = Chromium.open(origin(app) + "/")) {
      browser.awaitText("the page", "waiting"::equals, Duration.ofSeconds(20));
      browser.evaluate(script);
      String shown = browser.awaitText("the chat's answer", text -> !text.equals("waiting"), Duration.ofSeconds(20));
      assertEquals("answered tok0 tok1 remaining 19", shown, "the guest's 20 requests a minute, one spent");
    }
    try (Chromium browser = Chromium.open(origin(stranger) + "/")) {
      browser.awaitText("the page", "waiting"::equals, Duration.ofSeconds(20));
      browser.evaluate(script);
      String shown = browser.awaitText("the browser's refusal", text -> !text.equals("waiting"), Duration.ofSeconds(20));
      assertTrue(shown.startsWith("refused TypeError"), "a page of another origin cannot read the answers: " + shown);
    }
  }

  @Test
  void preflightsAndAnswersOnBothEdgesSayWhoMayRead() {
    String allowed = origin(app);
    HttpResponse<String> preflight = hub.call("OPTIONS", "/v1/chat/completions", null, null, "Origin", allowed,
        "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization,content-type");
    assertEquals(204, preflight.statusCode(), preflight.body());
    assertEquals(allowed, preflight.headers().firstValue("Access-Control-Allow-Origin").orElse(""));
    assertEquals("authorization,content-type", preflight.headers().firstValue("Access-Control-Allow-Headers").orElse(""));
    assertTrue(preflight.headers().firstValue("Access-Control-Allow-Methods").orElse("").contains("POST"));

    HttpResponse<String> fastPath = hub.call("POST", "/v1/chat/completions", AccountsHub.STATIC_KEY, AccountsHub.chat(), "Origin", allowed);
    assertEquals(200, fastPath.statusCode());
    assertEquals(allowed, fastPath.headers().firstValue("Access-Control-Allow-Origin").orElse(""), "the HTTP/1.1 fast path");
    assertTrue(fastPath.headers().firstValue("Access-Control-Expose-Headers").orElse("").contains("X-RateLimit-Remaining"));
    HttpResponse<String> refused = hub.call("POST", "/v1/chat/completions", "sk-wrong", AccountsHub.chat(), "Origin", allowed);
    assertEquals(401, refused.statusCode());
    assertEquals(allowed, refused.headers().firstValue("Access-Control-Allow-Origin").orElse(""), "a page can read why it was refused");
    HttpResponse<String> router = hub.call("POST", "/auth/guest-login", null, null, "Origin", allowed);
    assertEquals(201, router.statusCode());
    assertEquals(allowed, router.headers().firstValue("Access-Control-Allow-Origin").orElse(""), "the router");

    String other = origin(stranger);
    assertEquals(403, hub.call("OPTIONS", "/v1/chat/completions", null, null, "Origin", other,
        "Access-Control-Request-Method", "POST").statusCode());
    HttpResponse<String> unread = hub.call("POST", "/v1/chat/completions", AccountsHub.STATIC_KEY, AccountsHub.chat(), "Origin", other);
    assertFalse(unread.headers().firstValue("Access-Control-Allow-Origin").isPresent(), "served, but no browser lets the page read it");
  }

  @Test
  void withoutCorsOriginsNoAnswerLetsAPageRead() {
    try (AccountsHub closed = new AccountsHub(TestDatabase.SQLITE)) {
      HttpResponse<String> answer = closed.call("POST", "/v1/chat/completions", AccountsHub.STATIC_KEY, AccountsHub.chat(),
          "Origin", origin(app));
      assertEquals(200, answer.statusCode());
      assertFalse(answer.headers().firstValue("Access-Control-Allow-Origin").isPresent());
    }
  }
}
