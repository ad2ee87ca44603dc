package io.switchboard.relay;

import java.time.Duration;
import java.util.Objects;

/**
 * What a relay is told at start.
 *
 * @param serverUrl the Switchboard server
 * @param clientKey the server's client key, or null
 * @param relayId the id to register under; null lets the server assign one (kept for reconnects)
 * @param name a display name
 * @param authToken when set, clients must send {@code Authorization: Bearer <authToken>}
 * @param reconnectMax the longest wait between reconnects (they back off from one second)
 */
public record RelayConfig(String serverUrl, String clientKey, String relayId, String name, String authToken,
    Duration reconnectMax) {

  public RelayConfig {
    Objects.requireNonNull(serverUrl, "server URL");
    clientKey = clientKey == null || clientKey.isBlank() ? null : clientKey;
    authToken = authToken == null || authToken.isBlank() ? null : authToken;
    reconnectMax = Objects.requireNonNullElse(reconnectMax, Duration.ofSeconds(30));
  }
}
