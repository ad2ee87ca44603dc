package io.switchboard.server.auth;

import io.switchboard.protocol.Secret;
import io.switchboard.server.ServerConfig;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * The keys of the server's configuration. Management keys manage; without any, the API key does.
 * Inference keys, the API key and the management keys all reach the OpenAI API. Held hashed, and
 * every one compared, so that the time taken says nothing about which matched.
 */
final class ServiceKeys implements CredentialResolver {

  private record Key(Secret secret, Principal principal) {}

  private final List<Key> keys;

  ServiceKeys(ServerConfig config) {
    List<Key> all = new ArrayList<>();
    boolean managementKeys = !config.managementKeys().isEmpty();
    add(all, config.apiKey(), "api_key", managementKeys ? Set.of(Scope.INFERENCE, Scope.OPERATIONS)
        : Set.of(Scope.INFERENCE, Scope.OPERATIONS, Scope.MANAGEMENT));
    for (int i = 0; i < config.inferenceKeys().size(); i++) {
      add(all, config.inferenceKeys().get(i), "inference_key:" + (i + 1), Set.of(Scope.INFERENCE, Scope.OPERATIONS));
    }
    for (int i = 0; i < config.managementKeys().size(); i++) {
      add(all, config.managementKeys().get(i), "management_key:" + (i + 1), Set.of(Scope.INFERENCE, Scope.OPERATIONS, Scope.MANAGEMENT));
    }
    this.keys = List.copyOf(all);
  }

  private static void add(List<Key> keys, String plain, String id, Set<Scope> scopes) {
    Secret secret = Secret.ofNullable(plain);
    if (secret != null) {
      keys.add(new Key(secret, new Principal(id, Principal.Via.SERVICE_KEY, scopes)));
    }
  }

  /** The server's scopes no key grants: nothing guards them. A person's own ({@link Scope#USER}) is always guarded. */
  Set<Scope> unguarded() {
    EnumSet<Scope> open = EnumSet.of(Scope.INFERENCE, Scope.OPERATIONS, Scope.MANAGEMENT);
    keys.forEach(key -> open.removeAll(key.principal().scopes()));
    return Set.copyOf(open);
  }

  @Override
  public Principal resolve(String token) {
    if (keys.isEmpty()) {
      return null;
    }
    Secret presented = Secret.ofNullable(token);
    Principal matched = null;
    for (Key key : keys) {
      if (key.secret().sameAs(presented) && matched == null) {
        matched = key.principal();
      }
    }
    return matched;
  }
}
