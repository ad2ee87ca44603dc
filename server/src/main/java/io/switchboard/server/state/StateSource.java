package io.switchboard.server.state;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;

/** A plugin's part of the state API: its state as JSON, and optionally an HTML fragment for the dashboard. */
public interface StateSource {

  /** The plugin's id: its key in the envelope and its view's name. */
  String id();

  /** The state now. Called on an event loop, so it must not block. */
  JsonNode state();

  /** The HTML fragment that renders this state on the dashboard, or null for none. */
  default String view() {
    return null;
  }

  /** A view packaged as a resource under {@code state/}, read once. */
  static String resource(String name) {
    try (InputStream in = StateSource.class.getResourceAsStream("/state/" + name)) {
      if (in == null) {
        throw new IllegalStateException("missing resource state/" + name);
      }
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
