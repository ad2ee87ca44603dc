package io.switchboard.server.auth;

/**
 * One kind of credential the {@link Authenticator} accepts: the configured service keys today; a
 * user's API keys and the server's own tokens come as further resolvers. It runs on the event loop
 * for every request, so whatever it looks up it keeps at hand.
 */
public interface CredentialResolver {

  /** The principal {@code token} stands for, or null when it is not a credential of this kind. */
  Principal resolve(String token);
}
