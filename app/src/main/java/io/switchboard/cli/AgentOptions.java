package io.switchboard.cli;

import java.nio.file.Path;
import picocli.CommandLine.Option;

/** The options of every agent that dials in to a server (a worker, a relay). */
final class AgentOptions {

  @Option(names = "--config", description = "YAML configuration file (env CONFIG_FILE).")
  Path config;

  @Option(names = "--server", description = "The server's URL, e.g. http://gateway:8080 (env SERVER_URL).")
  @Flags.Key("server_url")
  String server;

  @Option(names = "--client-key", description = "The server's client key, if it has one (env CLIENT_KEY).")
  String clientKey;

  @Option(names = "--reconnect-max", description = "Longest wait between reconnect attempts (default 30s).")
  String reconnectMax;
}
