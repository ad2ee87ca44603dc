package io.switchboard.faults;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;

/**
 * The suite's figures, written by the tests themselves to {@code target/reliability/figures.md}
 * after every case, so that a run that stops half-way still leaves what it measured. docs/reliability.md
 * carries a copy of the last full run's tables.
 */
final class Figures {

  /** One fault: what was sent through it and how each request ended. Lost and hung must be 0. */
  record Fault(String fault, int sent, int succeeded, int failedClearly, int lost, int hung, long recoveryMs, String note) {}

  /** One class of bad input over every endpoint it applies to. 5xx must be 0. */
  record BadInput(String kind, int tried, int answered4xx, int answered2xx, int answered5xx, String note) {}

  static final Path FILE = Path.of("target", "reliability", "figures.md");
  private static final Map<String, Fault> faults = new TreeMap<>();
  private static final Map<String, BadInput> badInputs = new TreeMap<>();

  private Figures() {}

  static synchronized void fault(Fault row) {
    faults.put(row.fault(), row);
    write();
  }

  static synchronized void badInput(BadInput row) {
    badInputs.put(row.kind(), row);
    write();
  }

  private static void write() {
    StringBuilder md = new StringBuilder("## Faults\n\n")
        .append("| fault | sent | succeeded | failed clearly | lost | hung | recovery | note |\n")
        .append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n");
    faults.values().forEach(f -> md.append("| ").append(f.fault()).append(" | ").append(f.sent()).append(" | ")
        .append(f.succeeded()).append(" | ").append(f.failedClearly()).append(" | ").append(f.lost()).append(" | ")
        .append(f.hung()).append(" | ").append(f.recoveryMs() < 0 ? "n/a" : f.recoveryMs() + " ms").append(" | ")
        .append(f.note()).append(" |\n"));
    md.append("\n## Bad input\n\n")
        .append("| class | cases | 4xx | 2xx | 5xx | note |\n")
        .append("| --- | ---: | ---: | ---: | ---: | --- |\n");
    badInputs.values().forEach(b -> md.append("| ").append(b.kind()).append(" | ").append(b.tried()).append(" | ")
        .append(b.answered4xx()).append(" | ").append(b.answered2xx()).append(" | ").append(b.answered5xx()).append(" | ")
        .append(b.note()).append(" |\n"));
    try {
      Files.createDirectories(FILE.getParent());
      Files.writeString(FILE, md);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
