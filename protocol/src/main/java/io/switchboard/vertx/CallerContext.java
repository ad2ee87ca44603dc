package io.switchboard.vertx;

import io.vertx.core.Context;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;

/**
 * Brings an answer that another thread produced back to the context of the request it is for.
 *
 * <p>The server writes an HTTP/1.1 response only on its connection's own event loop (Vert.x's strict
 * thread mode, see {@code SwitchboardServer}), which spares every connection a cross-thread write
 * queue of 4 KiB. Answers that come from elsewhere (a relay's or a worker's connection on another
 * loop, a virtual thread) go through here before they touch a response.
 */
public final class CallerContext {

  private CallerContext() {}

  /**
   * A promise made on the calling thread's context: whichever thread completes it, its listeners
   * run on that context.
   */
  public static <T> Promise<T> promise(Vertx vertx) {
    return VertxInternals.promiseOnCaller(vertx);
  }

  /** Runs {@code action} now when on {@code context}'s thread, else on that thread, in order. */
  public static void run(Context context, Runnable action) {
    if (VertxInternals.onThread(context)) {
      action.run();
    } else {
      context.runOnContext(v -> action.run());
    }
  }
}
