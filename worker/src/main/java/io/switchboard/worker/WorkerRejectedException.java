package io.switchboard.worker;

/** The server refused this worker for good (wrong or unexpected client key); reconnecting cannot help. */
public final class WorkerRejectedException extends RuntimeException {
  private final short closeCode;

  public WorkerRejectedException(short closeCode, String reason) {
    super("server rejected the worker (close code " + closeCode + "): " + reason);
    this.closeCode = closeCode;
  }

  public short closeCode() {
    return closeCode;
  }
}
