package io.switchboard.server.llm;

import io.netty.buffer.ByteBuf;
import io.netty.util.concurrent.FastThreadLocal;
import io.switchboard.vertx.VertxInternals;
import io.vertx.core.buffer.Buffer;

/**
 * A buffer's bytes as an array, so that JSON is scanned without being decoded to text: read where
 * they lie when the buffer is on the heap (request bodies and workers' answers are), and copied
 * otherwise (an upstream's answer, lent in its pooled direct buffer), into a scratch array of the
 * calling thread when they fit. A view is read at once and never kept: the thread's next view may
 * reuse its array.
 */
record BufferBytes(byte[] array, int start, int end) {

  /** An upstream's answer comes in decoder chunks of at most 8 KiB; a larger piece gets an array of its own. */
  private static final int SCRATCH_BYTES = 16 * 1024;
  private static final FastThreadLocal<byte[]> SCRATCH = new FastThreadLocal<>() {
    @Override
    protected byte[] initialValue() {
      return new byte[SCRATCH_BYTES];
    }
  };

  static BufferBytes of(Buffer data) {
    return of(VertxInternals.byteBuf(data));
  }

  static BufferBytes of(ByteBuf buf) {
    int length = buf.readableBytes();
    if (buf.hasArray()) {
      int start = buf.arrayOffset() + buf.readerIndex();
      return new BufferBytes(buf.array(), start, start + length);
    }
    byte[] copy = length <= SCRATCH_BYTES ? SCRATCH.get() : new byte[length];
    buf.getBytes(buf.readerIndex(), copy, 0, length);
    return new BufferBytes(copy, 0, length);
  }

  /** Where the last {@code needle} begins, or -1. */
  int lastIndexOf(byte[] needle) {
    return lastIndexOf(needle, end);
  }

  /** Where the last {@code needle} that ends by {@code before} begins, or -1. */
  int lastIndexOf(byte[] needle, int before) {
    outer:
    for (int i = Math.min(before, end) - needle.length; i >= start; i--) {
      for (int j = 0; j < needle.length; j++) {
        if (array[i + j] != needle[j]) {
          continue outer;
        }
      }
      return i;
    }
    return -1;
  }

  /** Where the first {@code needle} at or after {@code from} begins, or -1. */
  int indexOf(byte[] needle, int from) {
    outer:
    for (int i = Math.max(from, start); i <= end - needle.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (array[i + j] != needle[j]) {
          continue outer;
        }
      }
      return i;
    }
    return -1;
  }

  /**
   * The whole number after the last {@code key} and its colon (spaces allowed), or -1; -1 too when
   * its digits run to the end of these bytes, where the rest of it may be in the next read.
   */
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
    return digits > 0 && i < end ? value : -1;
  }

  private int skipSpaces(int i) {
    while (i < end && array[i] == ' ') {
      i++;
    }
    return i;
  }
}
