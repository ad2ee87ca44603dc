package io.switchboard.server.llm;

import io.switchboard.server.http.ApiError;
import io.vertx.core.Vertx;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Ends requests whose worker has gone silent for the request timeout. One periodic sweep over the
 * requests in flight, rather than a timer per request: a Vert.x timer costs a map entry and two
 * priority-queue operations on the event loop for every request, and nearly every request ends long
 * before its timeout.
 */
final class SilenceWatch {

  /** A request that can tell whether it has been silent too long. */
  interface Watched {
    /** Ends the request if nothing happened on it since {@code deadlineNanos} (a {@link System#nanoTime()} value). */
    void checkSilence(long deadlineNanos);

    /** Ends the request now with {@code error}, cancelled at its worker. */
    void end(ApiError error);
  }

  private final Vertx vertx;
  private final Duration timeout;
  private final Set<Watched> watched = ConcurrentHashMap.newKeySet();
  private final long timer;

  /** @param timeout how long a request may go without a byte; the sweep overshoots it by a tenth at most */
  SilenceWatch(Vertx vertx, Duration timeout) {
    this.vertx = vertx;
    this.timeout = timeout;
    long every = Math.clamp(timeout.toMillis() / 10, 10, 1_000);
    this.timer = vertx.setPeriodic(every, t -> sweep());
  }

  Duration timeout() {
    return timeout;
  }

  void watch(Watched request) {
    watched.add(request);
  }

  void unwatch(Watched request) {
    watched.remove(request);
  }

  private void sweep() {
    long deadline = System.nanoTime() - timeout.toNanos();
    for (Watched request : watched) {
      request.checkSilence(deadline);
    }
  }

  /** Ends every request running on a worker with {@code error}: the server stops before they finished. */
  void endAll(ApiError error) {
    for (Watched request : watched) {
      request.end(error);
    }
  }

  void close() {
    vertx.cancelTimer(timer);
  }
}
