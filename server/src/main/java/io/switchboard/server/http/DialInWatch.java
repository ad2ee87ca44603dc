package io.switchboard.server.http;

import io.vertx.core.Vertx;

/**
 * The clock of an agent's connection (a worker, a relay): the agent must register within three
 * heartbeat intervals; once registered, it gets a heartbeat every interval, and is dropped when it
 * has sent nothing for three.
 */
public final class DialInWatch {

  /** What the watch asks of the connection it watches. */
  public interface Connection {
    boolean registered();

    /** No register message came in time. */
    void registerTimedOut();

    /** The agent sent nothing for {@code silentMs}. */
    void silent(long silentMs);

    /** Send one heartbeat. */
    void beat();
  }

  private final Vertx vertx;
  private final long timer;
  private volatile long lastHeard = System.nanoTime();

  public DialInWatch(Vertx vertx, long heartbeatMs, Connection connection) {
    this.vertx = vertx;
    long limitNanos = 3_000_000L * heartbeatMs;
    long registerBy = System.nanoTime() + limitNanos;
    this.timer = vertx.setPeriodic(heartbeatMs, t -> {
      if (!connection.registered()) {
        if (System.nanoTime() > registerBy) {
          connection.registerTimedOut();
        }
      } else if (System.nanoTime() - lastHeard > limitNanos) {
        connection.silent(3 * heartbeatMs);
      } else {
        connection.beat();
      }
    });
  }

  /** The agent sent something. */
  public void heard() {
    lastHeard = System.nanoTime();
  }

  public void stop() {
    vertx.cancelTimer(timer);
  }
}
