package io.switchboard.vertx;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Executor;

/**
 * The one way to run blocking work (the database, child processes, files) from an event loop: on a
 * virtual thread, with the result handed back to the caller's context as a future. Virtual threads
 * rather than Vert.x's worker pool: a pool of 20 would queue a burst of database writes behind one
 * slow start of a model server, and a virtual thread costs nothing while it waits. Work that sits in
 * native code (llama.cpp) would pin a virtual thread's carrier: it goes to its owner's platform
 * threads through {@link #call(Vertx, Executor, Callable)}.
 */
public final class Blocking {

  private Blocking() {}

  /** Runs {@code work} on a new virtual thread. */
  public static <T> Future<T> call(Vertx vertx, Callable<T> work) {
    return call(vertx, Thread.ofVirtual().name("switchboard-blocking")::start, work);
  }

  /** Runs {@code work} on {@code threads} (an owner's own virtual threads, to interrupt them on its stop). */
  public static <T> Future<T> call(Vertx vertx, Executor threads, Callable<T> work) {
    Promise<T> promise = CallerContext.promise(vertx);
    threads.execute(() -> {
      try {
        promise.complete(work.call());
      } catch (Throwable e) {
        promise.fail(e);
      }
    });
    return promise.future();
  }

  /**
   * Waits for a future from code that already runs on a thread that may block (never an event
   * loop); its failure is thrown as it is when unchecked.
   */
  public static <T> T await(Future<T> future) {
    try {
      return future.toCompletionStage().toCompletableFuture().join();
    } catch (CompletionException e) {
      if (e.getCause() instanceof RuntimeException unchecked) {
        throw unchecked;
      }
      throw e;
    }
  }
}
