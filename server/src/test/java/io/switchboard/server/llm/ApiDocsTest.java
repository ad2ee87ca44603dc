package io.switchboard.server.llm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.switchboard.server.Chromium;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/** The OpenAPI document lists exactly what the server serves, and Swagger UI shows it offline. */
class ApiDocsTest {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Set<String> METHODS = Set.of("get", "post", "put", "patch", "delete");

  /** {@code /a/{x}/b/} (a route with a wildcard) and {@code /a/{name}/b/{path}} become {@code /a/{}/b/{}}. */
  private static String normalize(String path) {
    String p = path.replaceAll("\\{[^}]*}", "{}");
    return p.endsWith("/") && p.length() > 1 ? p + "{}" : p;
  }

  @Test
  void theDocumentListsEveryRouteAndNothingElse() throws Exception {
    try (TestGateway gateway = TestGateway.start()) {
      HttpResponse<String> answer = gateway.get("/api/client/openapi.json");
      assertEquals(200, answer.statusCode());
      JsonNode doc = JSON.readTree(answer.body());
      assertEquals("3.1.0", doc.path("openapi").asText());

      Set<String> documented = new TreeSet<>();
      Set<String> documentedPaths = new TreeSet<>();
      doc.path("paths").fields().forEachRemaining(path -> {
        documentedPaths.add(normalize(path.getKey()));
        path.getValue().fieldNames().forEachRemaining(method -> {
          if (METHODS.contains(method)) {
            documented.add(method.toUpperCase() + " " + normalize(path.getKey()));
          }
        });
      });
      Set<String> served = new TreeSet<>();
      Set<String> servedAnyMethod = new TreeSet<>();
      for (String operation : gateway.server.operations()) {
        String method = operation.substring(0, operation.indexOf(' '));
        String path = normalize(operation.substring(operation.indexOf(' ') + 1));
        if (method.equals("ANY")) {
          servedAnyMethod.add(path);
        } else {
          served.add(method + " " + path);
        }
      }
      List<String> undocumented = new ArrayList<>();
      served.stream().filter(op -> !documented.contains(op)).forEach(undocumented::add);
      servedAnyMethod.stream().filter(path -> !documentedPaths.contains(path)).forEach(path -> undocumented.add("ANY " + path));
      assertEquals(List.of(), undocumented, "routes the document does not list");
      List<String> unserved = documented.stream()
          .filter(op -> !served.contains(op) && !servedAnyMethod.contains(op.substring(op.indexOf(' ') + 1))).toList();
      assertEquals(List.of(), unserved, "operations the document lists that no route serves");
    }
  }

  @Test
  void swaggerUiShowsTheChatCompletionsOperation() throws Exception {
    try (TestGateway gateway = TestGateway.start()) {
      HttpResponse<String> redirect = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(gateway.url() + "/swagger/"))
          .build(), HttpResponse.BodyHandlers.ofString());
      assertEquals(302, redirect.statusCode());
      assertEquals("/api/client/", redirect.headers().firstValue("Location").orElse(""));
      assertEquals(200, gateway.get("/api/client/swagger-ui-bundle.js").statusCode(), "served from the web jar");

      assumeTrue(Chromium.installed(), "Debian's chromium is not installed (.ci/run installs it)");
      try (Chromium browser = Chromium.open(gateway.url() + "/api/client/")) {
        String shown = browser.awaitText("the chat completions operation",
            text -> text.contains("/v1/chat/completions") && text.contains("Chat completions"), Duration.ofSeconds(30));
        assertTrue(shown.contains("Instances") && shown.contains("MCP"), shown);
        browser.screenshot(Path.of("target", "screenshots", "swagger-ui.png"));
      }
    }
  }
}
