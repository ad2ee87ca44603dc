package io.switchboard.server.accounts;

import static io.switchboard.server.accounts.AccountsHub.json;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.switchboard.server.ServerConfig;
import io.switchboard.server.TestDatabase;
import java.io.IOException;
import java.net.URI;
import java.net.URLDecoder;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import no.nav.security.mock.oauth2.MockOAuth2Server;
import no.nav.security.mock.oauth2.token.DefaultOAuth2TokenCallback;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/** Sign-in through a real OpenID Connect provider (mock-oauth2-server, a complete one), the browser played by the test. */
@ParameterizedClass
@EnumSource(TestDatabase.class)
class OidcSignInTest {

  private final TestDatabase database;

  OidcSignInTest(TestDatabase database) {
    this.database = database;
  }

  private static final String APP = "http://app.example/signed-in";

  private final HttpClient browser = HttpClient.newBuilder().followRedirects(HttpClient.Redirect.NEVER).build();
  private MockOAuth2Server provider;
  private AccountsHub hub;

  @BeforeEach
  void start() {
    provider = new MockOAuth2Server();
    provider.start(0);
    ServerConfig.Oidc oidc = new ServerConfig.Oidc(provider.issuerUrl("default").toString(), "switchboard", "s3cret",
        "http://localhost/auth/callback", null, List.of("http://app.example/"));
    hub = new AccountsHub(database, new ServerConfig.Accounts(null, null, null, null, null, null, null, List.of("ann@example.com"), oidc, null));
  }

  @AfterEach
  void stop() {
    hub.close();
    provider.shutdown();
  }

  /** Starts a login, lets the provider sign {@code subject} in, and returns the callback's query: code and state. */
  private Map<String, String> signInAtProvider(String subject, Map<String, Object> claims) throws Exception {
    HttpResponse<String> login = hub.call("GET", "/auth/login?redirect_url=" + URLEncoder.encode(APP, StandardCharsets.UTF_8), null, null);
    assertEquals(200, login.statusCode(), login.body());
    URI authorize = URI.create(json(login).path("authorization_url").asText());
    assertTrue(authorize.getQuery().contains("code_challenge_method=S256") && authorize.getQuery().contains("nonce="), authorize.toString());
    provider.enqueueCallback(new DefaultOAuth2TokenCallback("default", subject, "JWT", List.of("switchboard"), claims, 3600));
    HttpResponse<String> redirected = browser.send(HttpRequest.newBuilder(authorize).GET().build(), HttpResponse.BodyHandlers.ofString());
    assertEquals(302, redirected.statusCode(), redirected.body());
    Map<String, String> query = params(URI.create(redirected.headers().firstValue("Location").orElseThrow()).getRawQuery());
    assertEquals(json(login).path("state").asText(), query.get("state"));
    return query;
  }

  private HttpResponse<String> callback(Map<String, String> query) {
    return hub.call("GET", "/auth/callback?code=" + query.get("code") + "&state=" + query.get("state"), null, null);
  }

  private static Map<String, String> params(String encoded) {
    Map<String, String> params = new HashMap<>();
    for (String pair : encoded.split("&")) {
      int eq = pair.indexOf('=');
      params.put(pair.substring(0, eq), URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8));
    }
    return params;
  }

  @Test
  void aPersonSignsInWithTheProviderAndGetsOurTokensInTheFragment() throws Exception {
    Map<String, String> query = signInAtProvider("subject-1", Map.of("email", "ann@example.com", "name", "Ann Lee", "preferred_username", "ann"));
    HttpResponse<String> back = callback(query);
    assertEquals(302, back.statusCode(), back.body());
    URI location = URI.create(back.headers().firstValue("Location").orElseThrow());
    assertEquals(APP, location.getScheme() + "://" + location.getHost() + location.getPath());
    assertEquals(null, location.getQuery(), "the tokens never go in the query");
    Map<String, String> fragment = params(location.getRawFragment());
    JsonNode me = json(hub.call("GET", "/auth/me", fragment.get("access_token"), null));
    assertEquals("ann", me.path("username").asText());
    assertEquals("ann@example.com", me.path("email").asText());
    assertEquals("Ann Lee", me.path("full_name").asText());
    assertTrue(me.path("roles").toString().contains("admin"), "named in accounts.admins: " + me);

    assertEquals(401, callback(query).statusCode(), "a state is good once");

    Map<String, String> again = signInAtProvider("subject-1", Map.of("email", "ann@example.com", "preferred_username", "ann"));
    String second = params(URI.create(callback(again).headers().firstValue("Location").orElseThrow()).getRawFragment()).get("access_token");
    assertEquals(me.path("id").asText(), json(hub.call("GET", "/auth/me", second, null)).path("id").asText(), "the same user");

    Map<String, String> other = signInAtProvider("subject-2", Map.of("preferred_username", "ann"));
    String third = params(URI.create(callback(other).headers().firstValue("Location").orElseThrow()).getRawFragment()).get("access_token");
    assertEquals("ann-2", json(hub.call("GET", "/auth/me", third, null)).path("username").asText(), "another person, another user");
  }

  @Test
  void badCallbacksAndRedirectsAreRefused() throws IOException {
    assertEquals(400, hub.call("GET", "/auth/callback?state=x", null, null).statusCode(), "no code");
    assertEquals(400, hub.call("GET", "/auth/callback?code=x", null, null).statusCode(), "no state");
    assertEquals(401, hub.call("GET", "/auth/callback?code=x&state=made-up", null, null).statusCode(), "an unknown state");
    assertEquals(400, hub.call("GET", "/auth/login?redirect_url=" + URLEncoder.encode("http://evil.example/", StandardCharsets.UTF_8),
        null, null).statusCode(), "a redirect not allowed");
    assertEquals(400, hub.call("GET", "/auth/login?redirect_url=" + URLEncoder.encode(APP + "#tab", StandardCharsets.UTF_8),
        null, null).statusCode(), "an allowed redirect with a fragment of its own, where the tokens would go");
    assertEquals(400, hub.call("GET", "/auth/login", null, null).statusCode());
  }

  @Test
  void aCodeTheProviderRefusesIsA502() throws Exception {
    Map<String, String> query = signInAtProvider("subject-3", Map.of());
    query.put("code", "not-the-code");
    assertEquals(502, callback(query).statusCode());
  }
}
