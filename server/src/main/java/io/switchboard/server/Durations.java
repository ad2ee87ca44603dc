package io.switchboard.server;

import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** The one way durations are written in Switchboard's configuration and APIs. */
public final class Durations {

  private static final Pattern DURATION = Pattern.compile("(\\d+)\\s*(ms|s|m|h|d)?");

  private Durations() {}

  /** Parses {@code 250ms}, {@code 30s}, {@code 5m}, {@code 1h}, {@code 2d}, a bare number of seconds, or ISO-8601. */
  public static Duration parse(String text) {
    String trimmed = text.trim();
    if (trimmed.startsWith("P") || trimmed.startsWith("p")) {
      return Duration.parse(trimmed);
    }
    Matcher m = DURATION.matcher(trimmed);
    if (!m.matches()) {
      throw new IllegalArgumentException("'" + text + "' is not a duration; write it like 500ms, 30s, 5m or 1h");
    }
    long amount = Long.parseLong(m.group(1));
    String unit = m.group(2) == null ? "s" : m.group(2);
    return switch (unit) {
      case "ms" -> Duration.ofMillis(amount);
      case "m" -> Duration.ofMinutes(amount);
      case "h" -> Duration.ofHours(amount);
      case "d" -> Duration.ofDays(amount);
      default -> Duration.ofSeconds(amount);
    };
  }

  /** Writes a duration the way {@link #parse} reads it, in its largest whole unit: {@code 90s}, {@code 5m}, {@code 250ms}. */
  public static String format(Duration duration) {
    long ms = duration.toMillis();
    if (ms != 0 && ms % 3_600_000 == 0) {
      return ms / 3_600_000 + "h";
    }
    if (ms != 0 && ms % 60_000 == 0) {
      return ms / 60_000 + "m";
    }
    if (ms % 1000 == 0) {
      return ms / 1000 + "s";
    }
    return ms + "ms";
  }
}
