package io.switchboard.server.state;

import com.fasterxml.jackson.databind.JsonNode;
import io.switchboard.server.http.Resources;

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

  /** A view packaged as a resource under {@code state/}. */
  static String resource(String name) {
    return Resources.text("/state/" + name);
  }
}
