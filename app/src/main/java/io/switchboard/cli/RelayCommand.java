package io.switchboard.cli;

import io.modelcontextprotocol.client.transport.HttpClientStreamableHttpTransport;
import io.modelcontextprotocol.client.transport.ServerParameters;
import io.modelcontextprotocol.client.transport.StdioClientTransport;
import io.modelcontextprotocol.json.McpJsonDefaults;
import io.modelcontextprotocol.spec.McpClientTransport;
import io.switchboard.relay.McpSession;
import io.switchboard.relay.RelayAgent;
import io.switchboard.relay.RelayConfig;
import io.vertx.core.Vertx;
import java.net.URI;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.function.Supplier;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code switchboard relay}: connects one MCP server to a Switchboard server. */
@Command(
    name = "relay",
    mixinStandardHelpOptions = true,
    versionProvider = Main.Version.class,
    description = {
        "Connect one MCP server to a Switchboard server, which serves it at /api/mcp/id/<id>.",
        "The MCP server is a command run over stdio (after --) or a Streamable HTTP URL (--provider-url).",
        "Settings come from flags, then environment variables (SERVER_URL, CLIENT_KEY, CLIENT_ID, PROVIDER_URL,",
        "AUTH_TOKEN, ...), then the YAML file given by --config, then defaults."})
final class RelayCommand implements Callable<Integer> {

  /** The relay's settings as a user writes them. */
  record Settings(
      String serverUrl,
      String clientKey,
      String clientId,
      String clientName,
      String providerUrl,
      List<String> command,
      String authToken,
      Duration requestTimeout,
      Duration reconnectMax) {

    Settings {
      if (serverUrl == null) {
        throw new IllegalArgumentException("--server (SERVER_URL) is required, e.g. --server http://gateway:8080");
      }
      command = command == null ? List.of() : List.copyOf(command);
      if ((providerUrl == null) == command.isEmpty()) {
        throw new IllegalArgumentException(
            "give the MCP server either as a command after -- (stdio) or as --provider-url (Streamable HTTP), not both");
      }
      requestTimeout = Objects.requireNonNullElse(requestTimeout, Duration.ofMinutes(2));
      reconnectMax = Objects.requireNonNullElse(reconnectMax, Duration.ofSeconds(30));
    }

    Supplier<McpClientTransport> transports() {
      if (providerUrl != null) {
        URI uri = URI.create(providerUrl);
        String base = uri.getScheme() + "://" + uri.getRawAuthority();
        String endpoint = uri.getRawPath() == null || uri.getRawPath().isEmpty() ? "/mcp" : uri.getRawPath();
        return () -> HttpClientStreamableHttpTransport.builder(base).endpoint(endpoint).build();
      }
      return () -> new StdioClientTransport(ServerParameters.builder(command.getFirst()).args(command.subList(1, command.size()))
          .build(), McpJsonDefaults.getMapper());
    }
  }

  @Mixin
  AgentOptions agent = new AgentOptions();

  @Option(names = "--client-id", description = "Stable relay id; default: assigned by the server (env CLIENT_ID).")
  String clientId;

  @Option(names = "--client-name", description = "Display name (env CLIENT_NAME).")
  String clientName;

  @Option(names = "--provider-url", description = "A Streamable HTTP MCP server, e.g. http://127.0.0.1:7777/mcp (env PROVIDER_URL).")
  String providerUrl;

  @Option(names = "--auth-token", description = "Clients must send 'Authorization: Bearer <token>' (env AUTH_TOKEN).")
  String authToken;

  @Option(names = "--request-timeout", description = "Longest wait for the MCP server's answer (default 2m).")
  String requestTimeout;

  @Parameters(paramLabel = "COMMAND", description = "The MCP server to run over stdio, e.g. -- npx -y @modelcontextprotocol/server-everything")
  @Flags.Key("command")
  List<String> command;

  @Override
  public Integer call() throws InterruptedException {
    Settings settings = load(System.getenv());
    McpSession session = new McpSession(settings.transports(),
        settings.providerUrl() != null ? settings.providerUrl() : String.join(" ", settings.command()), settings.requestTimeout());
    session.open();
    Vertx vertx = EventLoops.start();
    RelayAgent agent = new RelayAgent(vertx, new RelayConfig(settings.serverUrl(), settings.clientKey(), settings.clientId(),
        settings.clientName(), settings.authToken(), settings.reconnectMax()), session);
    CountDownLatch stopped = new CountDownLatch(1);
    Termination.onSignal("switchboard-relay-stop", () -> {
      agent.stop().eventually(vertx::close).await();
      session.close();
      stopped.countDown();
    });
    try {
      agent.start().await();
    } catch (RuntimeException e) {
      System.err.println("switchboard relay: " + e.getMessage());
      return 3;
    }
    stopped.await();
    return 0;
  }

  Settings load(Map<String, String> env) {
    return Flags.load(Settings.class, this, agent.config, env, Map.of());
  }
}
