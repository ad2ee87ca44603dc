package io.switchboard.server.http;

import io.vertx.core.Future;

/**
 * A part of the server that serves routes of its own (the OpenAI API, instances, MCP, metrics, the
 * state dashboard). The server is the list of its capabilities: it mounts each on its router, starts
 * them in order before it listens, and stops them in reverse order once it no longer listens.
 *
 * <p>A capability keeps to its own package; what it needs of another comes in through its
 * constructor as a small interface ({@code ManagedModels}, {@code StateSource}).
 */
public interface Capability {

  /** Adds the capability's routes, each behind the {@link Mount#auth() authenticator}'s requirement it needs. */
  void mount(Mount mount);

  /** Gets ready to serve: loads what it keeps, starts what it runs. Nothing blocks here: blocking work goes through {@code Blocking}. */
  default Future<Void> start() {
    return Future.succeededFuture();
  }

  /** Stops what it runs and lets go of what it holds; requests still in flight are cut. */
  default Future<Void> stop() {
    return Future.succeededFuture();
  }
}
