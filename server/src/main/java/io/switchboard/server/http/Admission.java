package io.switchboard.server.http;

import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Promise;
import io.vertx.ext.web.RoutingContext;
import java.util.concurrent.atomic.LongAdder;

/**
 * Counts the API requests in flight and turns new ones away once the server drains, so that a
 * drain can wait for exactly the work it let in.
 */
public final class Admission implements Handler<RoutingContext> {

  /**
   * A LongAdder, not one atomic: every event loop counts each request in and out, and one shared
   * cell would bounce between their cores.
   */
  private final LongAdder inFlight = new LongAdder();
  private volatile boolean draining;
  private volatile Promise<Void> idle;

  @Override
  public void handle(RoutingContext ctx) {
    if (!enter()) {
      ApiError.draining().send(ctx.response());
      return;
    }
    ctx.addEndHandler(v -> leave());
    ctx.next();
  }

  /** Counts one request in; false, counting nothing, while draining. Each {@code true} takes one {@link #leave}. */
  public boolean enter() {
    if (draining) {
      return false;
    }
    inFlight.increment();
    return true;
  }

  /** Refuses while draining, without counting: for long-lived connections such as worker dial-ins. */
  public Handler<RoutingContext> gate() {
    return ctx -> {
      if (draining) {
        ApiError.draining().send(ctx.response());
      } else {
        ctx.next();
      }
    };
  }

  public boolean draining() {
    return draining;
  }

  public int inFlight() {
    return inFlight.intValue();
  }

  /** Refuses new requests from now on; the future completes when the last one in flight has ended. */
  public synchronized Future<Void> drain() {
    draining = true;
    if (idle == null) {
      idle = Promise.promise();
      if (inFlight.sum() == 0) {
        idle.tryComplete();
      }
    }
    return idle.future();
  }

  /** One request let in by {@link #enter} has ended. */
  public void leave() {
    inFlight.decrement();
    if (draining && inFlight.sum() == 0) {
      Promise<Void> waiting = idle;
      if (waiting != null) {
        waiting.tryComplete();
      }
    }
  }
}
