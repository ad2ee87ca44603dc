package io.switchboard.protocol;

/**
 * Reads the credential a request carries in its headers: {@code Authorization: Bearer <key>}, or
 * the {@code X-API-Key} header that some OpenAI clients send instead. The one place the header's
 * syntax is known.
 */
public final class Credentials {

  private Credentials() {}

  /** The key after {@code Bearer } (any case), or null when the header is absent or of another scheme. */
  public static String bearer(String authorization) {
    if (authorization != null && authorization.regionMatches(true, 0, "Bearer ", 0, 7)) {
      String key = authorization.substring(7).trim();
      return key.isEmpty() ? null : key;
    }
    return null;
  }

  /** The key a client presents: its bearer token, else its {@code X-API-Key}; null when neither. */
  public static String presented(String authorization, String apiKeyHeader) {
    String bearer = bearer(authorization);
    if (bearer != null) {
      return bearer;
    }
    return apiKeyHeader == null || apiKeyHeader.isBlank() ? null : apiKeyHeader.trim();
  }
}
