package io.switchboard.worker.backend;

/** A request in progress on a backend. */
@FunctionalInterface
public interface BackendCall {
  /** Aborts the request at the backend; the sink hears nothing more. Safe to call more than once. */
  void cancel();
}
