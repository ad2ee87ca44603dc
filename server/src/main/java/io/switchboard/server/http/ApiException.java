package io.switchboard.server.http;

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

  /** The error a failure stands for: its own when it is an ApiException, else an internal error. */
  public static ApiError of(Throwable failure) {
    return failure instanceof ApiException api ? api.error() : ApiError.internal(String.valueOf(failure.getMessage()));
  }
}
