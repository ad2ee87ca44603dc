package io.switchboard.server.http;

import io.switchboard.server.store.Database;

/** Carries an {@link ApiError} through a future chain to the handler that answers the client. */
public final class ApiException extends RuntimeException {
  private final ApiError error;

  public ApiException(ApiError error) {
    super(error.message(), null, false, false);
    this.error = error;
  }

  public ApiError error() {
    return error;
  }

  /**
   * The error a failure stands for: its own when it is an ApiException, 503 when the database
   * cannot be reached, else an internal error.
   */
  public static ApiError of(Throwable failure) {
    if (failure instanceof ApiException api) {
      return api.error();
    }
    if (Database.unreachable(failure)) {
      return ApiError.databaseUnavailable();
    }
    return ApiError.internal(String.valueOf(failure.getMessage()));
  }
}
