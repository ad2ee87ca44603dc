package io.switchboard.server.llm;

import java.util.concurrent.atomic.AtomicBoolean;

/** One slot of a worker's concurrency, held while a request runs there. */
public final class Lease {
  private final Worker worker;
  private final LlmRouter router;
  private final AtomicBoolean released = new AtomicBoolean();

  Lease(Worker worker, LlmRouter router) {
    this.worker = worker;
    this.router = router;
  }

  public Worker worker() {
    return worker;
  }

  /** Gives the slot back; later calls do nothing. */
  public void release() {
    if (released.compareAndSet(false, true)) {
      router.release(worker);
    }
  }
}
