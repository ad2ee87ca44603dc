package io.switchboard.faults;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** A child process of the suite, with its output collected line by line, ended with real signals. */
final class Child {
  final Process process;
  private final List<ProcessHandle> orphans;
  private final LinkedBlockingQueue<String> lines = new LinkedBlockingQueue<>();
  private final StringBuffer all = new StringBuffer();
  private final Thread reader;

  /** @param orphans where the processes this one started are remembered when it is killed */
  Child(Process process, List<ProcessHandle> orphans) {
    this.process = process;
    this.orphans = orphans;
    reader = Thread.ofPlatform().daemon().start(() -> {
      try (BufferedReader in = process.inputReader(StandardCharsets.UTF_8)) {
        for (String line = in.readLine(); line != null; line = in.readLine()) {
          lines.add(line);
          all.append(line).append('\n');
        }
      } catch (IOException ignored) {
        // the process ended
      }
    });
  }

  long pid() {
    return process.pid();
  }

  /** Everything the process printed, once it has exited. */
  String finalOutput() throws InterruptedException {
    reader.join(TimeUnit.SECONDS.toMillis(5));
    return all.toString();
  }

  String output() {
    return all.toString();
  }

  /** The first line from now on that matches, within 20 seconds; the match, for its groups. */
  Matcher awaitLine(Pattern pattern) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (System.nanoTime() < deadline) {
      String line = lines.poll(100, TimeUnit.MILLISECONDS);
      Matcher m = line == null ? null : pattern.matcher(line);
      if (m != null && m.find()) {
        return m;
      }
    }
    fail("no line matching " + pattern + " in:\n" + all);
    return null;
  }

  /** SIGTERM, as an operator or a service manager sends it; Process.destroy would also close our end of its output. */
  void terminate() throws IOException, InterruptedException {
    signal("TERM");
  }

  /**
   * SIGKILL: the process ends without a goodbye, as a crash or the OOM killer ends it. What it had
   * started is remembered first: orphaned, it is no longer among this JVM's descendants, and it
   * must still be gone by the end of the test.
   */
  void kill() throws IOException, InterruptedException {
    orphans.addAll(process.descendants().toList());
    signal("KILL");
    process.waitFor(10, TimeUnit.SECONDS);
  }

  private void signal(String name) throws IOException, InterruptedException {
    new ProcessBuilder("kill", "-" + name, Long.toString(pid())).start().waitFor();
  }

  /** Resident memory of the process, in KiB, as the kernel counts it. */
  long rssKiB() throws IOException {
    for (String line : Files.readAllLines(Path.of("/proc/" + pid() + "/status"))) {
      if (line.startsWith("VmRSS:")) {
        return Long.parseLong(line.replaceAll("\\D", ""));
      }
    }
    throw new IOException("no VmRSS for " + pid());
  }
}
