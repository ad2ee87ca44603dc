package io.switchboard.server.mcp;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/** The connected MCP relays, by id. */
final class RelayRegistry {

  private final Map<String, RelayConnection> relays = new ConcurrentHashMap<>();

  /** Adds a relay; returns the connection it replaces (same id), if any. */
  Optional<RelayConnection> register(RelayConnection relay) {
    return Optional.ofNullable(relays.put(relay.id(), relay));
  }

  /** Removes the relay if it is still the one registered under its id. */
  void remove(RelayConnection relay) {
    relays.remove(relay.id(), relay);
  }

  Optional<RelayConnection> get(String id) {
    return Optional.ofNullable(relays.get(id));
  }

  List<RelayConnection> all() {
    return List.copyOf(relays.values());
  }
}
