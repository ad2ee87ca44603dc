package io.switchboard.worker.llamacpp;

/**
 * A request this backend will not run as asked, and the parameter that is why: answered with 400 in
 * OpenAI's error shape, {@code param} naming it, so that no parameter is silently ignored.
 */
final class Refusal extends RuntimeException {

  private final String param;

  Refusal(String param, String message) {
    super(message, null, false, false);
    this.param = param;
  }

  String param() {
    return param;
  }
}
