package io.switchboard.worker.instances;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * A model server running as a child process. On Linux it runs in a session and process group of its
 * own ({@code setsid}), so that stopping it also stops whatever it started (vLLM's engine workers,
 * shell wrappers). Its stdout and stderr go to an {@link InstanceLog}.
 */
public final class ManagedProcess {

  private static final Path SETSID = Path.of("/usr/bin/setsid");

  private final Process process;
  private final boolean ownGroup;
  private final CompletableFuture<Integer> exit;

  private ManagedProcess(Process process, boolean ownGroup, InstanceLog log) {
    this.process = process;
    this.ownGroup = ownGroup;
    Thread pump = Thread.ofVirtual().name("instance-log-" + process.pid()).unstarted(() -> pump(process.getInputStream(), log));
    pump.start();
    // The exit is reported once the output is drained, so the log already holds the last lines.
    this.exit = process.onExit().thenApply(p -> {
      try {
        pump.join(Duration.ofSeconds(2));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      return p.exitValue();
    });
  }

  /**
   * Starts {@code command} with {@code environment} added to this process's own.
   *
   * @throws IOException when the command cannot be run (not found, not executable)
   */
  public static ManagedProcess start(List<String> command, Map<String, String> environment, Path workingDir, InstanceLog log)
      throws IOException {
    boolean ownGroup = Files.isExecutable(SETSID);
    List<String> argv = new ArrayList<>();
    if (ownGroup) {
      argv.add(SETSID.toString());
    }
    argv.addAll(command);
    ProcessBuilder builder = new ProcessBuilder(argv).redirectErrorStream(true).directory(workingDir.toFile());
    builder.environment().putAll(environment);
    builder.redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()));
    if (ownGroup && !runnable(command.getFirst())) {
      // setsid would start and then fail to exec; say what is missing instead.
      throw new IOException("cannot run '" + command.getFirst() + "': not found or not executable");
    }
    return new ManagedProcess(builder.start(), ownGroup, log);
  }

  public long pid() {
    return process.pid();
  }

  public boolean alive() {
    return process.isAlive();
  }

  /** Completes with the exit status once the process has ended and its output is in the log. */
  public CompletableFuture<Integer> exit() {
    return exit;
  }

  /**
   * Asks the process (group) to stop with SIGTERM, and kills it with SIGKILL when it has not ended
   * within {@code grace}. Blocks until it has ended.
   *
   * @return true when it ended on SIGTERM, false when it had to be killed
   */
  public boolean stop(Duration grace) throws InterruptedException {
    if (!process.isAlive()) {
      killLeftovers();
      return true;
    }
    signal("TERM");
    if (process.waitFor(grace.toMillis(), TimeUnit.MILLISECONDS)) {
      signal("KILL"); // whatever the leader left behind in its group
      return true;
    }
    signal("KILL");
    process.waitFor(10, TimeUnit.SECONDS);
    return false;
  }

  /**
   * The process ended on its own: what it started in its group (a wrapper's other children) is
   * killed too, so that nothing of it outlives it and a restart starts clean.
   */
  public void killLeftovers() throws InterruptedException {
    if (ownGroup) {
      signal("KILL");
    }
  }

  private void signal(String name) throws InterruptedException {
    if (ownGroup) {
      try {
        new ProcessBuilder("kill", "-s", name, "--", "-" + process.pid())
            .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start().waitFor(5, TimeUnit.SECONDS);
        return;
      } catch (IOException e) {
        // No kill(1): fall back to the JDK, which reaches the leader and its children.
      }
    }
    boolean force = name.equals("KILL");
    process.descendants().forEach(child -> {
      if (force) {
        child.destroyForcibly();
      } else {
        child.destroy();
      }
    });
    if (force) {
      process.destroyForcibly();
    } else {
      process.destroy();
    }
  }

  /** Whether {@code command} names an executable file, by its path or on the PATH. */
  public static boolean runnable(String command) {
    return Files.isExecutable(Path.of(command)) || onPath(command);
  }

  private static boolean onPath(String command) {
    if (command.contains("/")) {
      return false;
    }
    String path = System.getenv("PATH");
    if (path == null) {
      return false;
    }
    for (String dir : path.split(":")) {
      if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, command))) {
        return true;
      }
    }
    return false;
  }

  private static void pump(InputStream in, InstanceLog log) {
    byte[] buffer = new byte[8192];
    try (in) {
      int n;
      while ((n = in.read(buffer)) >= 0) {
        log.write(buffer, 0, n);
      }
    } catch (IOException e) {
      // The process closed its output or the log's disk failed; the exit is still reported.
    }
  }
}
