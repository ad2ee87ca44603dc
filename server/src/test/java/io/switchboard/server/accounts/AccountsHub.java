package io.switchboard.server.accounts;

import com.fasterxml.jackson.databind.JsonNode;
import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import io.switchboard.fakeupstream.FakeUpstream;
import io.switchboard.protocol.Json;
import io.switchboard.server.ServerConfig;
import io.switchboard.server.SwitchboardServer;
import io.switchboard.server.TestDatabase;
import io.vertx.core.Vertx;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * A server with a static API key (so that nothing is open to loopback clients without one) and a
 * fake upstream serving model {@code chat}, for the accounts' tests, on the database they run on.
 */
final class AccountsHub implements AutoCloseable {

  static final String STATIC_KEY = "static-key";

  private final Vertx vertx = Vertx.vertx();
  private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
  private final FakeUpstream upstream;
  /** The database this hub opened, dropped when it closes; null when the test keeps it across hubs. */
  private final TestDatabase.Opened owned;
  final SwitchboardServer server;

  /** A hub on a new database of this kind, dropped when the hub closes. */
  AccountsHub(TestDatabase database, ServerConfig.Accounts accounts) {
    this(tempDir(), database.open(), accounts, true, List.of(), null);
  }

  /** A hub whose upstream takes at most {@code embeddingBatchSize} inputs an embeddings request: larger ones are split. */
  AccountsHub(TestDatabase database, ServerConfig.Accounts accounts, int embeddingBatchSize) {
    this(tempDir(), database.open(), accounts, true, List.of(), embeddingBatchSize);
  }

  /** A hub whose API pages of these origins may call from a browser. */
  AccountsHub(TestDatabase database, List<String> corsOrigins) {
    this(tempDir(), database.open(), ServerConfig.Accounts.defaults(), true, corsOrigins, null);
  }

  AccountsHub(TestDatabase database) {
    this(database, ServerConfig.Accounts.defaults());
  }

  /** A hub on the test's database and data directory, which outlive it (a restart). */
  AccountsHub(Path dataDir, TestDatabase.Opened database, ServerConfig.Accounts accounts) {
    this(dataDir, database, accounts, false, List.of(), null);
  }

  private AccountsHub(Path dataDir, TestDatabase.Opened database, ServerConfig.Accounts accounts, boolean owned,
      List<String> corsOrigins, Integer embeddingBatchSize) {
    this.owned = owned ? database : null;
    upstream = new FakeUpstream(vertx, FakeUpstream.Behavior.defaults().withModels("chat")).start(0).await();
    server = SwitchboardServer.start(vertx, config(dataDir, database.url(), accounts,
        List.of(new ServerConfig.Upstream("local", upstream.baseUrl(), null, null, null, embeddingBatchSize)), corsOrigins)).await();
  }

  static Path tempDir() {
    try {
      return Files.createTempDirectory("switchboard-accounts");
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  /** The hub's settings on {@code dataDir}: a static key, these upstreams, no other service. */
  static ServerConfig config(Path dataDir, String databaseUrl, ServerConfig.Accounts accounts, List<ServerConfig.Upstream> upstreams) {
    return config(dataDir, databaseUrl, accounts, upstreams, List.of());
  }

  private static ServerConfig config(Path dataDir, String databaseUrl, ServerConfig.Accounts accounts,
      List<ServerConfig.Upstream> upstreams, List<String> corsOrigins) {
    return new ServerConfig("127.0.0.1", 0, dataDir, STATIC_KEY, null, Duration.ofSeconds(10), 100, Duration.ofSeconds(5),
        Duration.ofSeconds(5), Duration.ofMillis(500), 1L << 20, 64 * 1024, Duration.ofMillis(300), upstreams, databaseUrl, null,
        null, null, null, null, null, null, null, accounts, corsOrigins);
  }

  /** A request with this bearer token (none when null), and these further headers (name, value, ...). */
  HttpResponse<String> call(String method, String path, String bearer, String body, String... headers) {
    HttpRequest.Builder request = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + path))
        .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body))
        .header("Content-Type", "application/json");
    if (bearer != null) {
      request.header("Authorization", "Bearer " + bearer);
    }
    if (headers.length > 0) {
      request.headers(headers);
    }
    try {
      return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
    } catch (IOException e) {
      throw new IllegalStateException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  static JsonNode json(HttpResponse<String> response) {
    try {
      return Json.MAPPER.readTree(response.body());
    } catch (IOException e) {
      throw new AssertionError("not JSON (" + response.statusCode() + "): " + response.body(), e);
    }
  }

  /** A new guest's tokens. */
  JsonNode guest() {
    HttpResponse<String> answer = call("POST", "/auth/guest-login", null, null);
    if (answer.statusCode() != 201) {
      throw new AssertionError("guest-login: " + answer.statusCode() + " " + answer.body());
    }
    return json(answer);
  }

  OpenAIClient openai(String key) {
    return OpenAIOkHttpClient.builder().baseUrl("http://127.0.0.1:" + server.port() + "/v1").apiKey(key).maxRetries(0)
        .timeout(Duration.ofSeconds(20)).build();
  }

  static String chat() {
    return "{\"model\":\"chat\",\"max_tokens\":2,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
  }

  @Override
  public void close() {
    server.close().await();
    upstream.stop().await();
    vertx.close().await();
    if (owned != null) {
      owned.close();
    }
  }
}
