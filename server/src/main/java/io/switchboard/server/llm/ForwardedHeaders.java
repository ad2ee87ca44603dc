package io.switchboard.server.llm;

import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Function;

/** The client's headers a backend may see, whichever edge the request came in on. */
final class ForwardedHeaders {

  static final String REQUEST_ID = "X-Request-Id";

  private ForwardedHeaders() {}

  /**
   * The client's headers a backend may need, never its credentials, which are for this server only;
   * with the request's {@code X-Request-Id}, the client's own or a new one.
   */
  static Map<String, String> of(Function<String, String> header) {
    String contentType = header.apply("Content-Type");
    String type = contentType == null ? "application/json" : contentType;
    String requestId = header.apply(REQUEST_ID);
    String id = requestId == null ? newRequestId() : requestId;
    String accept = header.apply("Accept");
    String userAgent = header.apply("User-Agent");
    // Immutable maps of the exact size: half the bytes of a HashMap, on every request.
    if (accept == null && userAgent == null) {
      return Map.of("Content-Type", type, REQUEST_ID, id);
    } else if (userAgent == null) {
      return Map.of("Content-Type", type, REQUEST_ID, id, "Accept", accept);
    } else if (accept == null) {
      return Map.of("Content-Type", type, REQUEST_ID, id, "User-Agent", userAgent);
    }
    return Map.of("Content-Type", type, REQUEST_ID, id, "Accept", accept, "User-Agent", userAgent);
  }

  /**
   * A random id in UUID form. Not {@code UUID.randomUUID()}: its one shared SecureRandom is a lock
   * every event loop would contend on for every request, and a request id needs no cryptographic strength.
   */
  private static String newRequestId() {
    ThreadLocalRandom random = ThreadLocalRandom.current();
    return new UUID(random.nextLong(), random.nextLong()).toString();
  }
}
