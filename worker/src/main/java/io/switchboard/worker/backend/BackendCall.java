package io.switchboard.worker.backend;

/** A request in progress on a backend. */
@FunctionalInterface
public interface BackendCall {
  /** Aborts the request at the backend; the sink hears nothing more. Safe to call more than once. */
  void cancel();

  /**
   * Stops taking the answer from the backend while {@code held}, and takes it again once not:
   * whoever reads it is slower than the backend writes it, and the rest should wait at the backend
   * rather than in memory. A backend that cannot hold its answer back keeps sending. Safe to call in
   * any state.
   */
  default void hold(boolean held) {}
}
