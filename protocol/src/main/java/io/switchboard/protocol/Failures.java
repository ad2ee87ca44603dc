package io.switchboard.protocol;

/** The error codes a worker reports in {@link WorkerMessage.ResponseEnd#error()}. */
public final class Failures {
  /** The backend could not be reached, or failed before it sent a status line. Safe to retry elsewhere. */
  public static final String UPSTREAM_UNREACHABLE = "upstream_unreachable";
  /** The backend broke off after it had started to answer. */
  public static final String UPSTREAM_ERROR = "upstream_error";
  /** The worker is draining and takes no new request. Safe to retry elsewhere. */
  public static final String WORKER_DRAINING = "worker_draining";
  /** The connection to the worker was lost. Safe to retry elsewhere when nothing was sent yet. */
  public static final String WORKER_LOST = "worker_lost";

  private Failures() {}

  /** Whether a request that failed with this code before any byte reached the client may go to another worker. */
  public static boolean retriable(String code) {
    return UPSTREAM_UNREACHABLE.equals(code) || WORKER_DRAINING.equals(code) || WORKER_LOST.equals(code);
  }
}
