package io.switchboard.server.llm;

import io.netty.buffer.ByteBuf;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.internal.buffer.BufferInternal;

/**
 * A buffer's bytes, read where they lie when the buffer is on the heap (answers from upstreams and
 * request bodies are) and copied once otherwise, so that JSON is scanned without being decoded to text.
 */
record BufferBytes(byte[] array, int start, int end) {

  static BufferBytes of(Buffer data) {
    ByteBuf buf = ((BufferInternal) data).getByteBuf();
    if (buf.hasArray()) {
      int start = buf.arrayOffset() + buf.readerIndex();
      return new BufferBytes(buf.array(), start, start + buf.readableBytes());
    }
    byte[] copy = data.getBytes();
    return new BufferBytes(copy, 0, copy.length);
  }

  /** Where the last {@code needle} begins, or -1. */
  int lastIndexOf(byte[] needle) {
    outer:
    for (int i = end - needle.length; i >= start; i--) {
      for (int j = 0; j < needle.length; j++) {
        if (array[i + j] != needle[j]) {
          continue outer;
        }
      }
      return i;
    }
    return -1;
  }

  /** The whole number after the last {@code key} and its colon (spaces allowed), or -1. */
  long numberAfter(byte[] key) {
    int at = lastIndexOf(key);
    if (at < 0) {
      return -1;
    }
    int i = skipSpaces(at + key.length);
    if (i >= end || array[i] != ':') {
      return -1;
    }
    i = skipSpaces(i + 1);
    long value = 0;
    int digits = 0;
    for (; i < end && array[i] >= '0' && array[i] <= '9' && digits < 18; i++, digits++) {
      value = value * 10 + (array[i] - '0');
    }
    return digits > 0 ? value : -1;
  }

  private int skipSpaces(int i) {
    while (i < end && array[i] == ' ') {
      i++;
    }
    return i;
  }
}
