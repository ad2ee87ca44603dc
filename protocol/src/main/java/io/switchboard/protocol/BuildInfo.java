package io.switchboard.protocol;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Properties;

/** The version, commit and build time of this distribution, as stamped by the build. */
public record BuildInfo(String version, String commit, String buildTime) {

  private static final BuildInfo CURRENT = load();

  public static BuildInfo current() {
    return CURRENT;
  }

  private static BuildInfo load() {
    Properties props = new Properties();
    try (InputStream in = BuildInfo.class.getResourceAsStream("version.properties")) {
      if (in != null) {
        props.load(in);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return new BuildInfo(
        value(props, "version", "dev"), value(props, "commit", "unknown"), value(props, "build_time", "unknown"));
  }

  private static String value(Properties props, String key, String fallback) {
    String value = props.getProperty(key);
    return value == null || value.isBlank() || value.startsWith("${") ? fallback : value;
  }
}
