package io.switchboard.protocol;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * A configured shared secret (API key, client key) held only as its SHA-256, and checked in
 * constant time. The plain text is never kept, printed or logged.
 */
public final class Secret {
  private final byte[] hash;

  private Secret(byte[] hash) {
    this.hash = hash;
  }

  /** The secret for this plain text, or null when there is none. */
  public static Secret ofNullable(String plain) {
    return plain == null || plain.isEmpty() ? null : new Secret(sha256(plain));
  }

  /** Whether the candidate is this secret; the time taken does not depend on where they differ. */
  public boolean matches(String candidate) {
    return candidate != null && MessageDigest.isEqual(hash, sha256(candidate));
  }

  /** Whether both are the same secret, compared in constant time: hash a presented key once, then compare it with many. */
  public boolean sameAs(Secret other) {
    return other != null && MessageDigest.isEqual(hash, other.hash);
  }

  private static byte[] sha256(String text) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is part of every JDK", e);
    }
  }

  @Override
  public String toString() {
    return "Secret[redacted]";
  }
}
