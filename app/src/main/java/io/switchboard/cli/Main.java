package io.switchboard.cli;

import io.switchboard.protocol.BuildInfo;
import picocli.CommandLine.Command;
import picocli.CommandLine;

/** The {@code switchboard} command. */
@Command(
    name = "switchboard",
    mixinStandardHelpOptions = true,
    versionProvider = Main.Version.class,
    description = "One OpenAI-compatible gateway for a team's LLM compute and tools.",
    subcommands = {ServerCommand.class, WorkerCommand.class, RelayCommand.class, AdminCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {

  @CommandLine.Spec
  CommandLine.Model.CommandSpec spec;

  public static void main(String[] args) {
    preferPooledBuffersOnSmallHeaps();
    System.exit(run(args));
  }

  /**
   * With a heap of 512 MiB or less, Netty 4.2's adaptive buffer allocator shares its pools between
   * all threads, and the proxy path spent about 4% more CPU per request in it than in the pooled
   * allocator, whose caches are per event loop (bench/README.md, item 29). An operator's own
   * {@code -Dio.netty.allocator.type} is left as it is.
   */
  private static void preferPooledBuffersOnSmallHeaps() {
    if (System.getProperty("io.netty.allocator.type") == null && Runtime.getRuntime().maxMemory() <= 512L << 20) {
      System.setProperty("io.netty.allocator.type", "pooled");
    }
  }

  /** Runs the command and returns its exit code. */
  public static int run(String... args) {
    return commandLine().execute(args);
  }

  /** The command line, ready to execute; tests set its output streams. */
  static CommandLine commandLine() {
    return new CommandLine(new Main())
        .setCaseInsensitiveEnumValuesAllowed(true)
        .setExecutionExceptionHandler((e, cmd, parsed) -> {
          if (e instanceof IllegalArgumentException) {
            cmd.getErr().println("switchboard: " + e.getMessage());
            return 2;
          }
          throw e;
        });
  }

  @Override
  public void run() {
    spec.commandLine().usage(System.out);
  }

  static final class Version implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
      BuildInfo build = BuildInfo.current();
      return new String[] {"switchboard " + build.version() + " (commit " + build.commit() + ", built " + build.buildTime() + ")"};
    }
  }
}
