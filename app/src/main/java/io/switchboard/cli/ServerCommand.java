package io.switchboard.cli;

import io.switchboard.server.ServerConfig;
import io.switchboard.server.SwitchboardServer;
import io.vertx.core.Vertx;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code switchboard server}: the hub. */
@Command(
    name = "server",
    mixinStandardHelpOptions = true,
    versionProvider = Main.Version.class,
    description = {
        "Run the Switchboard hub: the OpenAI API, worker dial-ins and health on one port.",
        "Settings come from flags, then environment variables (the key in upper case: PORT, API_KEY, ...),",
        "then the YAML file given by --config (CONFIG_FILE), then defaults."})
final class ServerCommand implements Callable<Integer> {

  @Option(names = "--config", description = "YAML configuration file (env CONFIG_FILE).")
  Path config;

  @Option(names = "--host", description = "Address to listen on (default 0.0.0.0).")
  String host;

  @Option(names = "--port", description = "Port to listen on (default 8080; 0 picks a free one).")
  Integer port;

  @Option(names = "--data-dir", description = "Directory for the database and media (default ./data).")
  Path dataDir;

  @Option(names = "--api-key", description = "Key clients send as 'Authorization: Bearer'. Without one, only loopback clients are served.")
  String apiKey;

  @Option(names = "--client-key", description = "Key workers send in their register message.")
  String clientKey;

  @Option(names = "--upstream", paramLabel = "URL",
      description = "OpenAI-compatible server for the built-in local worker, e.g. http://127.0.0.1:8081/v1 (repeatable; env UPSTREAM, comma-separated).")
  @Flags.Own
  List<String> upstream;

  @Option(names = "--upstream-api-key", description = "API key the --upstream servers want (env UPSTREAM_API_KEY).")
  @Flags.Own
  String upstreamApiKey;

  @Option(names = "--request-timeout", description = "Longest silence from a worker during a request before 504 (default 120s).")
  String requestTimeout;

  @Option(names = "--queue-size", description = "Requests that may wait for a free worker (default 100).")
  Integer queueSize;

  @Option(names = "--queue-timeout", description = "Longest wait in the queue before 503 (default 30s).")
  String queueTimeout;

  @Option(names = "--drain-timeout", description = "Longest wait for requests in flight on SIGTERM (default 5m).")
  String drainTimeout;

  @Option(names = "--heartbeat-interval", description = "Heartbeat between server and workers (default 5s).")
  String heartbeatInterval;

  @Option(names = "--max-body-bytes", description = "Largest request body accepted (default 33554432).")
  Long maxBodyBytes;

  @Option(names = "--management-key", paramLabel = "KEY",
      description = "Key for the instances API (repeatable; env MANAGEMENT_KEYS, comma-separated). Without one, the API key manages.")
  @Flags.Key("management_keys")
  List<String> managementKeys;

  @Option(names = "--inference-key", paramLabel = "KEY",
      description = "Further key for the OpenAI endpoints only (repeatable; env INFERENCE_KEYS, comma-separated).")
  @Flags.Key("inference_keys")
  List<String> inferenceKeys;

  @Option(names = "--cors-origin", paramLabel = "ORIGIN",
      description = "A web origin whose pages may call the API from a browser, or * for any (repeatable; env CORS_ORIGINS, comma-separated).")
  @Flags.Key("cors_origins")
  List<String> corsOrigins;

  @Option(names = "--llama-server", paramLabel = "PATH", description = "The llama-server program for llama_cpp instances (default llama-server on PATH).")
  String llamaServer;

  @Option(names = "--database-url", paramLabel = "JDBC_URL",
      description = "jdbc:postgresql://... for PostgreSQL (default: SQLite file switchboard.db in the data directory).")
  String databaseUrl;

  @Option(names = "--metrics-port", description = "Serve /metrics on this port only (env METRICS_PORT); default: on the main port.")
  Integer metricsPort;

  @Option(names = "--gguf", paramLabel = "FILE",
      description = "Serve this GGUF model file in-process on the server's own local worker (repeatable; env GGUF, comma-separated).")
  @Flags.Own
  List<String> gguf;

  @Override
  public Integer call() throws InterruptedException {
    ServerConfig settings = load(System.getenv());
    Vertx vertx = EventLoops.start();
    SwitchboardServer server;
    try {
      server = SwitchboardServer.start(vertx, settings).await();
    } catch (RuntimeException e) {
      vertx.close();
      throw new IllegalArgumentException("cannot start the server: " + e.getMessage(), e);
    }
    CountDownLatch stopped = new CountDownLatch(1);
    Termination.onSignal("switchboard-shutdown", () -> {
      server.drain().eventually(server::close).eventually(vertx::close).await();
      stopped.countDown();
    });
    stopped.await();
    return 0;
  }

  ServerConfig load(Map<String, String> env) {
    Map<String, Object> own = new HashMap<>();
    if (gguf != null) {
      own.put("gguf", Map.of("files", gguf));
    }
    List<String> urls = upstream != null ? upstream
        : env.get("UPSTREAM") == null ? null : List.of(env.get("UPSTREAM").split(","));
    if (urls != null) {
      String key = upstreamApiKey != null ? upstreamApiKey : env.get("UPSTREAM_API_KEY");
      List<Map<String, Object>> upstreams = new ArrayList<>();
      for (String url : urls) {
        Map<String, Object> entry = new HashMap<>();
        entry.put("url", url.trim());
        entry.put("api_key", key);
        upstreams.add(entry);
      }
      own.put("upstreams", upstreams);
    }
    return Flags.load(ServerConfig.class, this, config, env, own);
  }
}
