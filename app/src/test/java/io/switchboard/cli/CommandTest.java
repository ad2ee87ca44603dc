package io.switchboard.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.switchboard.server.Durations;
import io.switchboard.server.ServerConfig;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class CommandTest {

  @TempDir
  Path dir;

  private static String run(String... args) {
    StringWriter out = new StringWriter();
    CommandLine cli = Main.commandLine();
    cli.setOut(new PrintWriter(out));
    cli.setErr(new PrintWriter(out));
    cli.execute(args);
    return out.toString();
  }

  @Test
  void printsItsVersionAndHelpForEverySubcommand() {
    assertTrue(run("--version").startsWith("switchboard 0.1.0-SNAPSHOT (commit "), run("--version"));
    assertTrue(run("--help").contains("server"));
    assertTrue(run("--help").contains("worker"));
    assertTrue(run("server", "--help").contains("--upstream"));
    assertTrue(run("worker", "--help").contains("--client-key"));
    assertTrue(run("relay", "--help").contains("--provider-url"));
  }

  @Test
  void theRelayTakesACommandOrAUrlButNotBoth() {
    RelayCommand command = new RelayCommand();
    new CommandLine(command).parseArgs("--server", "http://gateway:8080", "--", "npx", "-y", "server-everything");
    RelayCommand.Settings settings = command.load(Map.of("CLIENT_ID", "tools-1", "AUTH_TOKEN", "t"));
    assertEquals(List.of("npx", "-y", "server-everything"), settings.command());
    assertEquals("tools-1", settings.clientId());
    assertEquals("t", settings.authToken());

    RelayCommand both = new RelayCommand();
    new CommandLine(both).parseArgs("--server", "http://g", "--provider-url", "http://mcp:7777/mcp", "--", "npx");
    IllegalArgumentException refused = assertThrows(IllegalArgumentException.class, () -> both.load(Map.of()));
    assertTrue(refused.getMessage().contains("not both"), refused.getMessage());
  }

  @Test
  void flagsBeatEnvironmentWhichBeatsTheFileWhichBeatsDefaults() throws IOException {
    Path yaml = Files.writeString(dir.resolve("switchboard.yaml"), """
        port: 7000
        host: 127.0.0.1
        request_timeout: 90s
        queue_size: 5
        api_key: from-file
        upstreams:
          - http://127.0.0.1:9001/v1
          - url: http://127.0.0.1:9002/v1
            api_key: up-key
            models: [big]
            max_concurrency: 3
        """);
    ServerCommand command = new ServerCommand();
    new CommandLine(command).parseArgs("--config", yaml.toString(), "--port", "9000");

    ServerConfig config = command.load(Map.of("PORT", "8000", "QUEUE_SIZE", "7", "DRAIN_TIMEOUT", "2m"));

    assertEquals(9000, config.port(), "flag wins");
    assertEquals(7, config.queueSize(), "environment beats the file");
    assertEquals(Duration.ofMinutes(2), config.drainTimeout(), "environment beats the default");
    assertEquals(Duration.ofSeconds(90), config.requestTimeout(), "file beats the default");
    assertEquals("127.0.0.1", config.host());
    assertEquals("from-file", config.apiKey());
    assertEquals(Duration.ofSeconds(30), config.queueTimeout(), "default");
    assertEquals(2, config.upstreams().size());
    assertEquals("http://127.0.0.1:9001/v1", config.upstreams().get(0).url());
    assertEquals(new ServerConfig.Upstream("127.0.0.1:9002", "http://127.0.0.1:9002/v1", "up-key", List.of("big"), 3, 0),
        config.upstreams().get(1));
  }

  @Test
  void instanceSettingsAndKeysComeFromTheFileTheEnvironmentAndFlags() {
    ServerCommand command = new ServerCommand();
    new CommandLine(command).parseArgs("--management-key", "mk-flag", "--llama-server", "/opt/llama/llama-server");

    ServerConfig config = command.load(Map.of("INFERENCE_KEYS", "ik-1, ik-2", "CONFIG_FILE", write("""
        database_url: jdbc:postgresql://db/switchboard
        instances:
          port_range: 9100-9199
          max_running: 2
          lru_eviction: false
          start_timeout: 5m
        """)));

    assertEquals(List.of("mk-flag"), config.managementKeys());
    assertEquals(List.of("ik-1", "ik-2"), config.inferenceKeys());
    assertEquals("/opt/llama/llama-server", config.llamaServer());
    assertEquals("jdbc:postgresql://db/switchboard", config.databaseUrl());
    assertEquals(9100, config.instances().firstPort());
    assertEquals(9199, config.instances().lastPort());
    assertEquals(2, config.instances().maxRunning());
    assertEquals(false, config.instances().lruEviction());
    assertEquals(Duration.ofMinutes(5), config.instances().startTimeout());
    assertEquals(Duration.ofSeconds(30), config.instances().stopTimeout(), "default");
    assertEquals("llama-server", new ServerCommand().load(Map.of()).llamaServer(), "default");
    assertEquals(List.of("/m/a.gguf", "/m/b.gguf"), new ServerCommand().load(Map.of("GGUF", "/m/a.gguf, /m/b.gguf")).gguf().files());
    ServerCommand withGguf = new ServerCommand();
    new CommandLine(withGguf).parseArgs("--gguf", "/m/c.gguf");
    assertEquals(List.of("/m/c.gguf"), withGguf.load(Map.of()).gguf().files());
    IllegalArgumentException range = assertThrows(IllegalArgumentException.class,
        () -> command.load(Map.of("CONFIG_FILE", write("instances:\n  port_range: 9000-80\n"))));
    assertTrue(range.getMessage().contains("port_range"), range.getMessage());
  }

  @Test
  void upstreamFlagsReplaceTheFileAndTakeTheirKey() {
    ServerCommand command = new ServerCommand();
    new CommandLine(command).parseArgs("--upstream", "http://a:1/v1", "--upstream", "http://b:2");

    ServerConfig config = command.load(Map.of("UPSTREAM_API_KEY", "shared"));

    assertEquals(List.of("http://a:1/v1", "http://b:2"), config.upstreams().stream().map(ServerConfig.Upstream::url).toList());
    assertTrue(config.upstreams().stream().allMatch(u -> "shared".equals(u.apiKey())));
  }

  @Test
  void badValuesNameTheirKey() {
    ServerCommand command = new ServerCommand();
    new CommandLine(command).parseArgs();

    IllegalArgumentException duration = assertThrows(IllegalArgumentException.class,
        () -> command.load(Map.of("REQUEST_TIMEOUT", "soon")));
    assertTrue(duration.getMessage().contains("request_timeout"), duration.getMessage());
    IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class,
        () -> command.load(Map.of("CONFIG_FILE", write("prot: 1"))));
    assertTrue(unknown.getMessage().contains("prot"), unknown.getMessage());
  }

  @Test
  void theWorkerReadsNfrxStyleEnvironmentAndNeedsAServer() {
    WorkerCommand command = new WorkerCommand();
    new CommandLine(command).parseArgs("--model", "a", "--model", "b");

    WorkerCommand.Settings settings = command.load(Map.of(
        "SERVER_URL", "http://gateway:8080", "CLIENT_KEY", "ck", "UPSTREAM", "http://127.0.0.1:8081/v1",
        "MAX_CONCURRENCY", "6", "EMBEDDING_BATCH_SIZE", "32", "MODELS", "ignored"));

    assertEquals("http://gateway:8080", settings.serverUrl());
    assertEquals("ck", settings.clientKey());
    assertEquals(List.of("a", "b"), settings.models());
    assertEquals(6, settings.maxConcurrency());
    assertEquals(32, settings.embeddingBatchSize());
    IllegalArgumentException missing = assertThrows(IllegalArgumentException.class,
        () -> new WorkerCommand().load(Map.of("UPSTREAM", "http://x:1")));
    assertTrue(missing.getMessage().contains("--server"), missing.getMessage());
  }

  @Test
  void durationsReadTheWayPeopleWriteThem() {
    assertEquals(Duration.ofMillis(250), Durations.parse("250ms"));
    assertEquals(Duration.ofSeconds(30), Durations.parse("30"));
    assertEquals(Duration.ofMinutes(5), Durations.parse("5m"));
    assertEquals(Duration.ofHours(1), Durations.parse("PT1H"));
    assertThrows(IllegalArgumentException.class, () -> Durations.parse("5 minutes"));
    for (String written : List.of("250ms", "90s", "5m", "2h", "0s")) {
      assertEquals(written, Durations.format(Durations.parse(written)), "written back as read");
    }
  }

  private String write(String yaml) {
    try {
      return Files.writeString(dir.resolve("bad.yaml"), yaml).toString();
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  @Test
  void aWorkersFlagsReachItsSettingsUnderTheirConfigKeys() {
    WorkerCommand command = new WorkerCommand();
    new CommandLine(command).parseArgs("--server", "http://gateway:8080", "--client-key", "ck", "--upstream", "http://u:8081/v1",
        "--model", "a", "--model", "b", "--reconnect-max", "7s", "--max-concurrency", "3");
    WorkerCommand.Settings settings = command.load(Map.of("WORKER_NAME", "box", "MAX_CONCURRENCY", "9"));
    assertEquals("http://gateway:8080", settings.serverUrl());
    assertEquals("ck", settings.clientKey());
    assertEquals(List.of("a", "b"), settings.models());
    assertEquals(Duration.ofSeconds(7), settings.reconnectMax());
    assertEquals(3, settings.maxConcurrency(), "a flag wins over the environment");
    assertEquals("box", settings.workerName(), "from the environment");
  }

  @Test
  void adminCommandsMakeUsersRolesAndKeysOnTheDataDirectory() {
    String data = dir.resolve("data").toString();
    String made = run("admin", "create-user", "--data-dir", data, "--username", "root", "--email", "root@example.com", "--admin");
    assertTrue(made.contains("root <root@example.com> roles [user, admin]"), made);
    assertTrue(run("admin", "create-user", "--data-dir", data, "--username", "ann", "--email", "ann@example.com").contains("[user]"));
    assertTrue(run("admin", "grant", "--data-dir", data, "ann", "admin").contains("[user, admin]"));
    String key = run("admin", "create-key", "--data-dir", data, "root", "--name", "ops");
    assertTrue(key.lines().anyMatch(line -> line.startsWith("sk_live_") && line.length() == 56), "the key alone on its line: " + key);
    assertTrue(key.contains("it is not shown again"), key);
    assertTrue(run("admin", "grant", "--data-dir", data, "nobody", "admin").contains("no user 'nobody'"));
  }
}
