package io.switchboard.protocol;

import io.vertx.core.buffer.Buffer;

/**
 * A binary WebSocket frame carrying body bytes of one request: one byte of {@link Kind}, the
 * request id as eight big-endian bytes, then the payload as it came from the client or backend.
 *
 * @param payload a slice of the frame; it shares the frame's memory
 */
public record DataFrame(Kind kind, long requestId, Buffer payload) {

  public static final int HEADER_BYTES = 9;

  /** Which way the bytes go. */
  public enum Kind {
    /** Server to worker: part of a request body. */
    REQUEST_BODY((byte) 1),
    /** Worker to server: part of a response body. */
    RESPONSE_BODY((byte) 2);

    private final byte code;

    Kind(byte code) {
      this.code = code;
    }

    static Kind of(byte code) {
      for (Kind kind : values()) {
        if (kind.code == code) {
          return kind;
        }
      }
      throw new IllegalArgumentException("unknown data frame kind " + code);
    }
  }

  /** Encodes a frame; the payload is copied once, behind the header. */
  public static Buffer encode(Kind kind, long requestId, Buffer payload) {
    Buffer frame = Buffer.buffer(HEADER_BYTES + payload.length());
    frame.appendByte(kind.code).appendLong(requestId).appendBuffer(payload);
    return frame;
  }

  /** Decodes a frame without copying its payload. */
  public static DataFrame decode(Buffer frame) {
    if (frame.length() < HEADER_BYTES) {
      throw new IllegalArgumentException("data frame shorter than its header: " + frame.length() + " bytes");
    }
    return new DataFrame(Kind.of(frame.getByte(0)), frame.getLong(1), frame.slice(HEADER_BYTES, frame.length()));
  }
}
