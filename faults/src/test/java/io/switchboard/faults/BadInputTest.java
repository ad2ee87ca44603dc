package io.switchboard.faults;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.IntPredicate;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Every operation of the OpenAPI document, tried with what broken and hostile clients send. Each
 * must get an answer in time, never a 5xx, never a stack trace, and the status a client can act on.
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class BadInputTest {

  private static Api api;

  @BeforeAll
  static void start() throws Exception {
    api = new Api();
  }

  @AfterAll
  static void stop() throws Exception {
    api.close();
  }

  /** What one class of bad input got, and what was wrong with it. */
  private static final class Verdicts {
    final String kind;
    int tried;
    int fourxx;
    int twoxx;
    int fivexx;
    final List<String> wrong = new ArrayList<>();

    Verdicts(String kind) {
      this.kind = kind;
    }

    /** Counts the answer; it is wrong when it hung, is a 5xx, shows a stack trace, or fails {@code expected}. */
    void judge(String what, RawHttp.Answer answer, IntPredicate expected) {
      tried++;
      if (answer.status() >= 500) {
        fivexx++;
      } else if (answer.status() >= 400) {
        fourxx++;
      } else if (answer.status() >= 200) {
        twoxx++;
      }
      boolean trace = answer.body().contains("\tat ") || answer.body().contains("Exception:");
      // A refusal says why, in the endpoint's shape: OpenAI's and JSON-RPC's carry an "error" object,
      // the instances API's a plain "error" string.
      boolean shapeless = answer.status() >= 400 && answer.status() < 500 && !answer.body().contains("\"error\"");
      if (answer.hung() || answer.status() >= 500 || trace || shapeless || !expected.test(answer.status())) {
        wrong.add(what + " -> " + (answer.hung() ? "no answer in 10 s" : answer.status() + " " + abbreviate(answer.body())));
      }
    }

    void report(String note) {
      Figures.badInput(new Figures.BadInput(kind, tried, fourxx, twoxx, fivexx, note));
      assertEquals(List.of(), wrong, kind);
    }
  }

  private static String abbreviate(String body) {
    return body.length() > 200 ? body.substring(0, 200) + "..." : body;
  }

  private static boolean clientError(int status) {
    return status >= 400 && status < 500;
  }

  @Test
  void everySecuredEndpointRefusesMissingAndWrongCredentials() {
    Verdicts none = new Verdicts("auth: no credentials");
    Verdicts wrong = new Verdicts("auth: a wrong key");
    for (Api.Operation op : api.operations) {
      String path = op.path("absent");
      byte[] body = op.takesBody() ? op.sample().getBytes(StandardCharsets.UTF_8) : null;
      IntPredicate expected = op.secured() ? status -> status == 401 : status -> status != 401 && status != 403;
      none.judge(op.method() + " " + path, api.send(op.method(), path, Map.of("Content-Type", "application/json"), body), expected);
      for (Map<String, String> header : List.of(Map.of("Authorization", "Bearer sk-wrong"), Map.of("X-API-Key", "sk-wrong"))) {
        wrong.judge(op.method() + " " + path + " " + header.keySet(), api.send(op.method(), path,
            Map.of("Content-Type", "application/json", header.keySet().iterator().next(), header.values().iterator().next()), body),
            op.secured() ? status -> status == 401 : status -> status != 401 && status != 403);
      }
    }
    none.report("every operation of the OpenAPI document; secured ones answer 401, public ones never 401");
    wrong.report("Authorization: Bearer and X-API-Key with a key the server does not have");
  }

  /** A class of mangled bodies: a name, how to make one from an operation's sample, and which answers are right. */
  private record BodyClass(String kind, java.util.function.Function<String, byte[]> make, IntPredicate expected, String note) {}

  private static byte[] utf8(String text) {
    return text.getBytes(StandardCharsets.UTF_8);
  }

  private static final List<BodyClass> BODIES = List.of(
      new BodyClass("malformed JSON", s -> utf8("{\"model\": \"m\", \"messages\": [}"), BadInputTest::clientError, "a syntax error"),
      new BodyClass("truncated JSON", s -> utf8(s.substring(0, s.length() / 2)), BadInputTest::clientError, "the sample cut in half"),
      new BodyClass("empty body", s -> new byte[0], status -> status < 500,
          "Content-Length: 0: a 4xx, except an instance's PUT, where no fields change nothing (200)"),
      new BodyClass("wrong types", s -> utf8("[\"" + s.replace("\"", "\\\"") + "\"]"), BadInputTest::clientError, "an array for an object"),
      new BodyClass("wrong field types", s -> utf8("{\"model\":42,\"messages\":\"x\",\"input\":{},\"prompt\":7,\"query\":[],"
          + "\"documents\":1,\"name\":false,\"arguments\":\"x\",\"enabled\":\"yes\",\"allow\":{},\"idle_timeout\":[],"
          + "\"jsonrpc\":2,\"method\":1}"), BadInputTest::clientError, "each known field with the wrong type"),
      new BodyClass("nulls", s -> utf8("null"), BadInputTest::clientError, "the JSON null"),
      new BodyClass("null fields", s -> utf8(s.replaceAll(":\\s*(\"[^\"]*\"|\\[[^\\]]*\\]|\\{[^}]*\\}|[0-9]+|true|false)", ":null")),
          status -> status < 500, "every value of the sample null: a 4xx, except an instance's PUT, where null resets a field "
              + "to its default (JSON merge patch) and the model stays"),
      new BodyClass("invalid UTF-8", s -> {
        byte[] ok = utf8(s);
        int quote = s.indexOf('"', s.indexOf(':')) + 1;
        byte[] broken = new byte[ok.length + 2];
        System.arraycopy(ok, 0, broken, 0, quote);
        broken[quote] = (byte) 0xc3;
        broken[quote + 1] = 0x28;
        System.arraycopy(ok, quote, broken, quote + 2, ok.length - quote);
        return broken;
      }, BadInputTest::clientError, "a broken two-byte sequence at the start of the first string value"),
      new BodyClass("deep nesting", s -> utf8("{\"model\":\"m\",\"x\":" + "[".repeat(5_000) + "]".repeat(5_000) + "}"),
          BadInputTest::clientError, "5,000 nested arrays; the limit is 1,000"),
      new BodyClass("unknown fields", s -> utf8(s.replaceFirst("\\{", "{\"zz_unknown\":{\"a\":[1,2]},")), status -> status < 500,
          "accepted where the API is open (OpenAI passes unknown fields on) or refused"),
      new BodyClass("negative and huge numbers", s -> utf8(s.replaceFirst("\\{", "{\"max_tokens\":-1,\"n\":1e400,\"temperature\":-99999999999999999999999,"
          + "\"top_n\":-5,\"max_concurrency\":99999999999999999999,\"port\":-1,")), status -> status < 500,
          "refused by the server, or passed to the backend untouched"),
      new BodyClass("empty strings", s -> utf8(s.replaceAll("\"[^\"]*\"\\s*(,|})", "\"\"$1").replace("\"\"", "\"\"")), status -> status < 500,
          "every string value of the sample empty"));

  @Test
  void everyBodyOperationRefusesMangledBodiesWithA4xx() {
    for (BodyClass kind : BODIES) {
      Verdicts verdicts = new Verdicts(kind.kind());
      for (Api.Operation op : api.operations) {
        if (!op.takesBody()) {
          continue;
        }
        String path = op.livePath();
        verdicts.judge(op.method() + " " + path, api.call(op, path, kind.make().apply(op.sample())), kind.expected());
      }
      verdicts.report(kind.note());
    }
  }

  @Test
  void bodiesOverTheLimitGet413HugeHeaders431AndHugeLines414() {
    Verdicts bodies = new Verdicts("huge body");
    Verdicts headers = new Verdicts("huge headers");
    byte[] huge = utf8("{\"model\":\"m\",\"pad\":\"" + "x".repeat(Api.MAX_BODY * 2) + "\"}");
    String bigHeader = "y".repeat(64 * 1024);
    for (Api.Operation op : api.operations) {
      String path = op.livePath();
      if (op.takesBody()) {
        bodies.judge(op.method() + " " + path, api.call(op, path, huge), status -> status == 413);
      }
      headers.judge(op.method() + " " + path, api.send(op.method(), path, Map.of("Authorization", "Bearer " + Api.KEY,
          "X-Huge", bigHeader), null), status -> status == 431);
    }
    Verdicts lines = new Verdicts("huge request line");
    for (Api.Operation op : api.operations) {
      String path = op.livePath() + "?q=" + "z".repeat(16 * 1024);
      lines.judge(op.method() + " " + op.livePath() + "?q=(16 KiB)", api.send(op.method(), path,
          Map.of("Authorization", "Bearer " + Api.KEY), null), status -> status == 414);
    }
    bodies.report("twice max_body_bytes (64 KiB here): 413");
    headers.report("one 64 KiB header: 431");
    lines.report("a 16 KiB query string: 414");
  }

  @Test
  void namesAndIdsThatClimbOutOfTheirPlaceAreRefused() throws Exception {
    Verdicts verdicts = new Verdicts("path traversal in names and ids");
    List<String> climbs = List.of("..%2F..%2Fetc%2Fpasswd", "%2e%2e", "%2E%2E%2F%2E%2E", "..", "..%5C..%5Cwindows", "a%00b", "a%2Fb",
        "%252e%252e%252f");
    for (Api.Operation op : api.operations) {
      if (!op.hasParams() || op.template().startsWith("/swagger") || op.template().startsWith("/api/client/")) {
        continue;
      }
      for (String climb : climbs) {
        String path = op.pathAll(climb);
        byte[] body = op.takesBody() ? op.sample().getBytes(StandardCharsets.UTF_8) : null;
        // A bare dot segment is resolved away before routing (RFC 3986), as every HTTP server does:
        // ".../{name}/.." is the parent path, itself an operation that is judged on its own.
        boolean dotSegment = climb.equals("..") || climb.equals("%2e%2e");
        verdicts.judge(op.method() + " " + path, api.call(op, path, body),
            dotSegment ? status -> status < 500 : BadInputTest::clientError);
      }
    }
    for (String raw : List.of("/swagger/../../../../etc/passwd", "/api/client/..%2F..%2F..%2Fetc%2Fpasswd",
        "/swagger/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/api/state/view/..%2F..%2Fetc%2Fpasswd.html")) {
      RawHttp.Answer answer = api.send("GET", raw, Map.of("Authorization", "Bearer " + Api.KEY), null);
      verdicts.judge("GET " + raw, answer, status -> clientError(status) || status == 200 && !answer.body().contains("root:"));
    }
    verdicts.report("../, %2e%2e, %2F, %5C, NUL and double encoding in every path parameter, and in the static file routes");
    RawHttp.Answer list = api.send("GET", "/api/v1/instances", Map.of("Authorization", "Bearer " + Api.KEY), null);
    assertTrue(!list.body().contains("..") && !list.body().contains("passwd"), "no instance was made under such a name: " + list.body());
  }

  @Test
  void peoplesCredentialsReachWhatTheirRoleAllowsAndOnlyTheirOwn() throws Exception {
    JsonNode guest = signUp(null);
    String access = guest.path("access_token").asText();
    Verdicts asGuest = new Verdicts("auth: a guest's token");
    Verdicts tampered = new Verdicts("auth: a tampered token");
    Verdicts revoked = new Verdicts("auth: a revoked token");
    String forged = access.substring(0, access.length() - 4) + (access.endsWith("AAAA") ? "BBBB" : "AAAA");
    JsonNode gone = signUp(null);
    String ended = gone.path("access_token").asText();
    assertEquals(200, api.send("GET", "/auth/logout", Map.of("Authorization", "Bearer " + ended), null).status());
    for (Api.Operation op : api.operations) {
      // Ending the guest's own session would spoil the rest; the ended token is tried instead.
      if (!op.secured() || op.template().equals("/auth/logout") || op.template().equals("/auth/revoke")) {
        continue;
      }
      String path = op.livePath();
      byte[] body = op.takesBody() ? op.sample().getBytes(StandardCharsets.UTF_8) : null;
      boolean management = path.startsWith("/api/v1/instances") || path.startsWith("/api/v1/server/") || path.startsWith("/v1/admin/")
          || path.startsWith("/api/state") || path.equals("/api/v1/metrics") || path.startsWith("/api/llm/workers/");
      IntPredicate expected = management ? status -> status == 403
          : path.startsWith("/auth/refresh-token") ? status -> status == 401 // an access token is no refresh token
          : status -> status != 401 && status != 403 || path.startsWith("/auth/api-keys");
      asGuest.judge(op.method() + " " + path, api.send(op.method(), path, bearer(access), body), expected);
      tampered.judge(op.method() + " " + path, api.send(op.method(), path, bearer(forged), body), status -> status == 401);
      revoked.judge(op.method() + " " + path, api.send(op.method(), path, bearer(ended), body), status -> status == 401);
    }
    asGuest.report("every secured operation: the operators' (instances, llama-server, tool settings, the server's state and "
        + "JSON metrics, draining a worker) 403, the refresh with an access token 401, the others never 401 or 403 (but a guest's API keys, 403)");
    tampered.report("the last bytes of a guest's JWT signature changed: 401 everywhere");
    revoked.report("a token whose session logged out, before it expired: 401 everywhere");

    Verdicts others = new Verdicts("another user's ids");
    String ann = signUp("ann-faults").path("access_token").asText();
    String bob = signUp("bob-faults").path("access_token").asText();
    JsonNode annKey = Cluster.JSON.readTree(api.send("POST", "/auth/api-keys", bearer(ann), utf8("{\"name\":\"mine\"}")).body());
    String annKeyId = annKey.path("id").asText();
    api.send("PATCH", "/v1/users/me/settings", bearer(ann), utf8("{\"preferences\":{\"theme\":\"ann-dark\"}}"));
    others.judge("DELETE /auth/api-keys/{ann's} as bob", api.send("DELETE", "/auth/api-keys/" + annKeyId, bearer(bob), null),
        status -> status == 404);
    others.judge("POST /auth/revoke {ann's refresh token} as bob", api.send("POST", "/auth/revoke", bearer(bob),
        utf8("{\"refresh_token\":\"" + guest.path("refresh_token").asText() + "\"}")), status -> status == 404);
    RawHttp.Answer bobsKeys = api.send("GET", "/auth/api-keys", bearer(bob), null);
    others.judge("GET /auth/api-keys as bob", bobsKeys, status -> status == 200 && !bobsKeys.body().contains(annKeyId));
    RawHttp.Answer bobsSettings = api.send("GET", "/v1/users/me/settings", bearer(bob), null);
    others.judge("GET /v1/users/me/settings as bob", bobsSettings, status -> status == 200 && !bobsSettings.body().contains("ann-dark"));
    RawHttp.Answer stillAnns = api.send("GET", "/auth/me", bearer(annKey.path("key").asText()), null);
    others.judge("GET /auth/me with ann's key, after bob's tries", stillAnns, status -> status == 200 && stillAnns.body().contains("ann-faults"));
    others.judge("GET /auth/me with the guest's token, after bob's revoke", api.send("GET", "/auth/me", bearer(access), null),
        status -> status == 200);
    others.report("one user's key id, refresh token and settings, tried by another: 404, or not seen; the owner's still work");
  }

  /** A new guest's tokens; upgraded to a user of that name where one is given. */
  private static JsonNode signUp(String username) throws Exception {
    JsonNode tokens = Cluster.JSON.readTree(api.send("POST", "/auth/guest-login", Map.of(), null).body());
    if (username != null) {
      String access = tokens.path("access_token").asText();
      assertEquals(200, api.send("POST", "/auth/upgrade", bearer(access),
          utf8("{\"username\":\"" + username + "\",\"email\":\"" + username + "@example.com\"}")).status());
      tokens = Cluster.JSON.readTree(api.send("POST", "/auth/refresh-token", bearer(tokens.path("refresh_token").asText()), null).body());
    }
    return tokens;
  }

  private static Map<String, String> bearer(String token) {
    return Map.of("Authorization", "Bearer " + token, "Content-Type", "application/json");
  }

  @Test
  void afterAllOfItTheServerIsHealthyAndHoldsNothing() throws Exception {
    everyBodyOperationRefusesMangledBodiesWithA4xx();
    assertEquals(200, api.send("GET", "/healthz", Map.of(), null).status());
    var llm = Cluster.JSON.readTree(api.send("GET", "/api/state", Map.of("Authorization", "Bearer " + Api.KEY), null).body())
        .path("plugins").path("llm");
    assertEquals(0, llm.path("queued").asInt(-1));
    assertEquals(0, llm.path("workers").path(0).path("in_flight").asInt(-1), llm.toString());
    assertEquals(200, api.call(new Api.Operation("POST", "/v1/chat/completions", true, true), "/v1/chat/completions",
        utf8(new Api.Operation("POST", "/v1/chat/completions", true, true).sample())).status());
  }
}
