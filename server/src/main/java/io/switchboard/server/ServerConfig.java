package io.switchboard.server;

import com.fasterxml.jackson.annotation.JsonCreator;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Everything the server is told at start. Null fields take the defaults below, so a config built
 * from a partial YAML file, the environment and flags is complete.
 *
 * @param host the address to listen on
 * @param port the port for the API, dashboard and worker dial-ins (0: any free port)
 * @param dataDir where the database and media live
 * @param apiKey the key clients send as {@code Authorization: Bearer}; null leaves the API open to loopback clients only
 * @param clientKey the key workers send in their {@code register} message; null means workers send none
 * @param requestTimeout how long a request may wait for its next byte from a worker before it fails with 504
 * @param queueSize how many requests may wait for a free worker slot (0: none wait)
 * @param queueTimeout how long a request waits in that queue before it fails with 503
 * @param drainTimeout how long a drain waits for requests in flight
 * @param heartbeatInterval how often server and workers exchange heartbeats; a peer silent for three is dropped
 * @param maxBodyBytes the largest request body accepted (413 beyond)
 * @param maxFrameBytes the largest WebSocket frame between server and workers
 * @param modelPollInterval how often the local worker asks its upstreams for their models
 * @param upstreams OpenAI-compatible servers that the server's own local worker serves
 * @param databaseUrl a JDBC URL ({@code jdbc:postgresql://...}); null: SQLite in the data directory
 * @param managementKeys keys for the instances API; none: the API key manages, and with no API key loopback clients do
 * @param inferenceKeys further keys accepted by the OpenAI endpoints, besides the API key and the management keys
 * @param llamaServer the {@code llama-server} program, by path or name on PATH
 * @param instances limits and timings of managed instances
 * @param mcpServers Streamable HTTP MCP servers whose tools the server offers itself, besides those of relays
 * @param metricsPort a port of its own for {@code /metrics}; null serves it on the main port
 * @param modelPrices prices per million tokens by model, for the estimated costs of the JSON metrics
 * @param gguf GGUF files the server's own local worker serves in-process with llama.cpp
 * @param accounts people: guests, tokens, API keys, sign-in, roles and rate limits
 * @param corsOrigins web origins whose pages may call the API from a browser ({@code *}: any); none turns CORS off
 */
public record ServerConfig(
    String host,
    Integer port,
    Path dataDir,
    String apiKey,
    String clientKey,
    Duration requestTimeout,
    Integer queueSize,
    Duration queueTimeout,
    Duration drainTimeout,
    Duration heartbeatInterval,
    Long maxBodyBytes,
    Integer maxFrameBytes,
    Duration modelPollInterval,
    List<Upstream> upstreams,
    String databaseUrl,
    List<String> managementKeys,
    List<String> inferenceKeys,
    String llamaServer,
    InstanceSettings instances,
    List<McpServer> mcpServers,
    Integer metricsPort,
    Map<String, Price> modelPrices,
    LocalModels gguf,
    Accounts accounts,
    List<String> corsOrigins) {

  public ServerConfig {
    host = Objects.requireNonNullElse(host, "0.0.0.0");
    port = Objects.requireNonNullElse(port, 8080);
    dataDir = Objects.requireNonNullElse(dataDir, Path.of("data"));
    apiKey = blankToNull(apiKey);
    clientKey = blankToNull(clientKey);
    requestTimeout = Objects.requireNonNullElse(requestTimeout, Duration.ofSeconds(120));
    queueSize = Objects.requireNonNullElse(queueSize, 100);
    queueTimeout = Objects.requireNonNullElse(queueTimeout, Duration.ofSeconds(30));
    drainTimeout = Objects.requireNonNullElse(drainTimeout, Duration.ofMinutes(5));
    heartbeatInterval = Objects.requireNonNullElse(heartbeatInterval, Duration.ofSeconds(5));
    maxBodyBytes = Objects.requireNonNullElse(maxBodyBytes, 32L << 20);
    maxFrameBytes = Objects.requireNonNullElse(maxFrameBytes, 1 << 20);
    modelPollInterval = Objects.requireNonNullElse(modelPollInterval, Duration.ofMinutes(1));
    upstreams = upstreams == null ? List.of() : List.copyOf(upstreams);
    databaseUrl = blankToNull(databaseUrl);
    managementKeys = nonBlank(managementKeys);
    inferenceKeys = nonBlank(inferenceKeys);
    llamaServer = Objects.requireNonNullElse(blankToNull(llamaServer), "llama-server");
    instances = Objects.requireNonNullElseGet(instances, InstanceSettings::defaults);
    mcpServers = mcpServers == null ? List.of() : List.copyOf(mcpServers);
    modelPrices = modelPrices == null ? Map.of() : Map.copyOf(modelPrices);
    gguf = Objects.requireNonNullElseGet(gguf, LocalModels::none);
    accounts = Objects.requireNonNullElseGet(accounts, Accounts::defaults);
    corsOrigins = nonBlank(corsOrigins).stream().map(origin -> origin.endsWith("/") ? origin.substring(0, origin.length() - 1) : origin)
        .toList();
    if (metricsPort != null && (metricsPort < 0 || metricsPort > 65535)) {
      throw new IllegalArgumentException("metrics_port must be between 0 and 65535, got " + metricsPort);
    }
    if (port < 0 || port > 65535) {
      throw new IllegalArgumentException("port must be between 0 and 65535, got " + port);
    }
    if (queueSize < 0) {
      throw new IllegalArgumentException("queue_size must be 0 or more, got " + queueSize);
    }
    if (maxFrameBytes < 4096) {
      throw new IllegalArgumentException("max_frame_bytes must be at least 4096, got " + maxFrameBytes);
    }
  }

  /**
   * People's accounts (spec 003).
   *
   * @param guestLogin whether {@code POST /auth/guest-login} makes guests
   * @param accessTokenTtl how long an access token (a JWT) is good for
   * @param refreshTokenTtl how long a refresh token is good for, and so a session without use
   * @param guestTtl a guest unused for this long is removed, with what it kept
   * @param apiKeysPerUser the most API keys a user may hold at once
   * @param apiKeyMaxDays the longest an API key may live; also the lifetime of one made without {@code expires_in_days}
   * @param signingKeyRotation how often the key that signs access tokens is replaced (the old one verifies until its tokens expire)
   * @param admins the emails of the people who administer the server: their accounts get the {@code admin} role
   * @param oidc sign-in with an OpenID Connect provider, or null for none
   * @param rateLimits what a person may ask of the OpenAI endpoints, by role
   */
  public record Accounts(Boolean guestLogin, Duration accessTokenTtl, Duration refreshTokenTtl, Duration guestTtl,
      Integer apiKeysPerUser, Integer apiKeyMaxDays, Duration signingKeyRotation, List<String> admins, Oidc oidc,
      RateLimits rateLimits) {

    public Accounts {
      guestLogin = Objects.requireNonNullElse(guestLogin, true);
      accessTokenTtl = Objects.requireNonNullElse(accessTokenTtl, Duration.ofMinutes(15));
      refreshTokenTtl = Objects.requireNonNullElse(refreshTokenTtl, Duration.ofDays(30));
      guestTtl = Objects.requireNonNullElse(guestTtl, Duration.ofDays(30));
      apiKeysPerUser = Objects.requireNonNullElse(apiKeysPerUser, 5);
      apiKeyMaxDays = Objects.requireNonNullElse(apiKeyMaxDays, 90);
      signingKeyRotation = Objects.requireNonNullElse(signingKeyRotation, Duration.ofDays(30));
      rateLimits = Objects.requireNonNullElseGet(rateLimits, RateLimits::defaults);
      admins = admins == null ? List.of() : admins.stream().map(email -> email.trim().toLowerCase(java.util.Locale.ROOT)).toList();
      if (accessTokenTtl.isNegative() || accessTokenTtl.isZero() || refreshTokenTtl.compareTo(accessTokenTtl) < 0) {
        throw new IllegalArgumentException("accounts.access_token_ttl must be positive and no longer than accounts.refresh_token_ttl");
      }
      if (apiKeysPerUser < 0 || apiKeyMaxDays < 1) {
        throw new IllegalArgumentException("accounts.api_keys_per_user must be 0 or more and accounts.api_key_max_days 1 or more");
      }
    }

    public static Accounts defaults() {
      return new Accounts(null, null, null, null, null, null, null, null, null, null);
    }
  }

  /**
   * Requests and tokens a person may spend per window on the OpenAI endpoints, by role ({@code guest},
   * {@code user}, {@code admin}); a role not named has no limit, and neither have the server's own keys.
   *
   * @param window the length of a window; counts start over at its end
   */
  public record RateLimits(Duration window, Map<String, Limit> roles) {

    /** @param requests per window, or null for any number; @param tokens prompt and completion tokens per window, or null */
    public record Limit(Integer requests, Long tokens) {

      /** A limit of either or both, or null when neither is set. */
      public static Limit ofNullable(Integer requests, Long tokens) {
        return requests == null && tokens == null ? null : new Limit(requests, tokens);
      }
    }

    public RateLimits {
      window = Objects.requireNonNullElse(window, Duration.ofMinutes(1));
      roles = roles == null ? Map.of("guest", new Limit(20, 20_000L), "user", new Limit(120, 200_000L)) : Map.copyOf(roles);
      if (window.isZero() || window.isNegative()) {
        throw new IllegalArgumentException("accounts.rate_limits.window must be positive");
      }
    }

    public static RateLimits defaults() {
      return new RateLimits(null, null);
    }
  }

  /**
   * An OpenID Connect provider people sign in with (Keycloak, Google, Entra, Auth0, ...), found
   * through its {@code .well-known/openid-configuration}.
   *
   * @param issuer the provider's issuer URL
   * @param redirectUri this server's {@code /auth/callback} as the provider knows it
   * @param scopes asked for; {@code openid} is always among them
   * @param allowedRedirects where a login may send the browser back to: URL prefixes (the web app's origin)
   */
  public record Oidc(String issuer, String clientId, String clientSecret, String redirectUri, String scopes,
      List<String> allowedRedirects) {

    public Oidc {
      if (issuer == null || clientId == null || clientSecret == null || redirectUri == null) {
        throw new IllegalArgumentException("accounts.oidc needs issuer, client_id, client_secret and redirect_uri");
      }
      scopes = Objects.requireNonNullElse(scopes, "openid email profile");
      if (!(" " + scopes + " ").contains(" openid ")) {
        scopes = "openid " + scopes;
      }
      allowedRedirects = allowedRedirects == null ? List.of() : List.copyOf(allowedRedirects);
    }
  }

  /** All defaults. */
  public static ServerConfig defaults() {
    return new ServerConfig(null, null, null, null, null, null, null, null, null, null, null, null, null, null,
        null, null, null, null, null, null, null, null, null, null, null);
  }

  /** The same settings on another port. */
  public ServerConfig withPort(int newPort) {
    return new ServerConfig(host, newPort, dataDir, apiKey, clientKey, requestTimeout, queueSize, queueTimeout, drainTimeout,
        heartbeatInterval, maxBodyBytes, maxFrameBytes, modelPollInterval, upstreams, databaseUrl, managementKeys,
        inferenceKeys, llamaServer, instances, mcpServers, metricsPort, modelPrices, gguf, accounts, corsOrigins);
  }

  private static List<String> nonBlank(List<String> keys) {
    return keys == null ? List.of() : keys.stream().filter(k -> k != null && !k.isBlank()).toList();
  }

  private static String blankToNull(String value) {
    return value == null || value.isBlank() ? null : value;
  }

  /**
   * An OpenAI-compatible server served by the server's local worker.
   *
   * @param name a display name (default: the URL's host and port)
   * @param url its OpenAI base URL, like {@code http://127.0.0.1:8081/v1}
   * @param apiKey the key the upstream wants, or null
   * @param models the models to advertise; empty: read from the upstream's {@code /v1/models}
   * @param maxConcurrency how many requests may run there at once
   * @param embeddingBatchSize the most inputs per embeddings request (0: no limit)
   */
  public record Upstream(
      String name, String url, String apiKey, List<String> models, Integer maxConcurrency, Integer embeddingBatchSize) {

    @JsonCreator(mode = JsonCreator.Mode.PROPERTIES)
    public Upstream {
      if (url == null || url.isBlank()) {
        throw new IllegalArgumentException("an upstream needs a url");
      }
      models = models == null ? List.of() : List.copyOf(models);
      maxConcurrency = Objects.requireNonNullElse(maxConcurrency, 8);
      embeddingBatchSize = Objects.requireNonNullElse(embeddingBatchSize, 0);
      if (name == null || name.isBlank()) {
        java.net.URI uri = java.net.URI.create(url);
        name = uri.getHost() + (uri.getPort() > 0 ? ":" + uri.getPort() : "");
      }
    }

    /** An upstream given by its URL alone, as in {@code upstreams: [http://127.0.0.1:8081/v1]}. */
    @JsonCreator(mode = JsonCreator.Mode.DELEGATING)
    public static Upstream of(String url) {
      return new Upstream(null, url, null, null, null, null);
    }
  }

  /**
   * How the server runs managed instances (model servers it starts on demand).
   *
   * @param portRange the ports given to instances, {@code FIRST-LAST}
   * @param maxInstances how many instances may exist (-1: no limit)
   * @param maxRunning how many may run at once (-1: no limit)
   * @param lruEviction whether starting one beyond {@code maxRunning} stops the least recently used idle one
   * @param startTimeout how long an instance may take to answer its health check
   * @param stopTimeout how long a stopping instance may finish its requests, and then take after SIGTERM, before SIGKILL
   * @param checkInterval how often idle timeouts are checked
   * @param logMaxBytes the size at which an instance's log is rotated (three old files are kept)
   */
  public record InstanceSettings(
      String portRange,
      Integer maxInstances,
      Integer maxRunning,
      Boolean lruEviction,
      Duration startTimeout,
      Duration stopTimeout,
      Duration checkInterval,
      Long logMaxBytes) {

    public InstanceSettings {
      portRange = Objects.requireNonNullElse(portRange, "8000-9000");
      maxInstances = Objects.requireNonNullElse(maxInstances, -1);
      maxRunning = Objects.requireNonNullElse(maxRunning, -1);
      lruEviction = Objects.requireNonNullElse(lruEviction, true);
      startTimeout = Objects.requireNonNullElse(startTimeout, Duration.ofMinutes(2));
      stopTimeout = Objects.requireNonNullElse(stopTimeout, Duration.ofSeconds(30));
      checkInterval = Objects.requireNonNullElse(checkInterval, Duration.ofSeconds(30));
      logMaxBytes = Objects.requireNonNullElse(logMaxBytes, 10L << 20);
      String[] bounds = portRange.split("-");
      if (!portRange.matches("\\d{1,5}-\\d{1,5}") || Integer.parseInt(bounds[0]) < 1
          || Integer.parseInt(bounds[0]) > Integer.parseInt(bounds[1]) || Integer.parseInt(bounds[1]) > 65535) {
        throw new IllegalArgumentException("instances.port_range must be FIRST-LAST within 1-65535, like 8000-9000; got " + portRange);
      }
    }

    public static InstanceSettings defaults() {
      return new InstanceSettings(null, null, null, null, null, null, null, null);
    }

    public int firstPort() {
      return Integer.parseInt(portRange.substring(0, portRange.indexOf('-')));
    }

    public int lastPort() {
      return Integer.parseInt(portRange.substring(portRange.indexOf('-') + 1));
    }
  }

  /**
   * An MCP server the hub reaches by URL.
   *
   * @param name its name in the tool catalog (default: host and port)
   * @param url its Streamable HTTP endpoint, like {@code http://10.0.0.7:7777/mcp}
   */
  public record McpServer(String name, String url) {

    @JsonCreator(mode = JsonCreator.Mode.PROPERTIES)
    public McpServer {
      if (url == null || url.isBlank()) {
        throw new IllegalArgumentException("an MCP server needs a url");
      }
      if (name == null || name.isBlank()) {
        java.net.URI uri = java.net.URI.create(url);
        name = uri.getHost() + (uri.getPort() > 0 ? "-" + uri.getPort() : "");
      }
    }
  }

  /**
   * What a model costs, in any currency, per million tokens.
   *
   * @param input per million prompt tokens
   * @param output per million completion tokens
   */
  public record Price(double input, double output) {}

  /**
   * GGUF files served in this process with llama.cpp.
   *
   * @param files models for chat and completions, each named after its file
   * @param embedding models for embeddings
   * @param ctxSize the context of each model, all slots together
   * @param threads CPU threads for generation (default: all cores)
   * @param gpuLayers layers offloaded to a GPU
   * @param parallel requests each model serves at once
   */
  public record LocalModels(List<String> files, List<String> embedding, Integer ctxSize, Integer threads, Integer gpuLayers,
      Integer parallel) {

    @JsonCreator(mode = JsonCreator.Mode.PROPERTIES)
    public LocalModels {
      files = files == null ? List.of() : List.copyOf(files);
      embedding = embedding == null ? List.of() : List.copyOf(embedding);
      ctxSize = Objects.requireNonNullElse(ctxSize, 4096);
      threads = Objects.requireNonNullElse(threads, Math.max(1, Runtime.getRuntime().availableProcessors()));
      gpuLayers = Objects.requireNonNullElse(gpuLayers, 0);
      parallel = Objects.requireNonNullElse(parallel, 2);
    }

    /** Files given as one comma-separated string, as in {@code GGUF=a.gguf,b.gguf}. */
    @JsonCreator(mode = JsonCreator.Mode.DELEGATING)
    public static LocalModels of(String files) {
      return new LocalModels(Arrays.stream(files.split(",")).map(String::trim).filter(f -> !f.isEmpty()).toList(),
          null, null, null, null, null);
    }

    public static LocalModels none() {
      return new LocalModels(null, null, null, null, null, null);
    }

    public boolean any() {
      return !files.isEmpty() || !embedding.isEmpty();
    }
  }
}
