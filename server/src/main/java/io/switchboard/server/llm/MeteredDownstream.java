package io.switchboard.server.llm;

import io.netty.buffer.ByteBuf;
import io.switchboard.server.http.ApiError;
import io.switchboard.server.metrics.Metrics;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.internal.buffer.BufferInternal;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * Passes an answer on unchanged while it accounts for it: status, time to first byte, and the token
 * counts of the {@code usage} object when the backend sends one (the last chunk of a stream, or the
 * whole JSON answer).
 */
final class MeteredDownstream implements Dispatch.Downstream {

  private static final byte[] USAGE = ascii("\"usage\"");
  private static final byte[] PROMPT_TOKENS = ascii("\"prompt_tokens\"");
  private static final byte[] COMPLETION_TOKENS = ascii("\"completion_tokens\"");

  private final Dispatch.Downstream next;
  private final Metrics.Request account;
  private int status = 200;
  private Worker worker;

  MeteredDownstream(Dispatch.Downstream next, Metrics.Request account) {
    this.next = next;
    this.account = account;
  }

  @Override
  public void head(Worker worker, int status, Map<String, String> headers) {
    this.status = status;
    this.worker = worker;
    next.head(worker, status, headers);
  }

  @Override
  public void chunk(Buffer data) {
    account.firstByte();
    Bytes bytes = Bytes.of(data);
    if (bytes.lastIndexOf(USAGE, bytes.end) >= 0) {
      long in = bytes.numberAfter(PROMPT_TOKENS);
      long out = bytes.numberAfter(COMPLETION_TOKENS);
      if (in >= 0 || out >= 0) {
        account.tokens(Math.max(0, in), Math.max(0, out));
      }
    }
    next.chunk(data);
  }

  @Override
  public void complete() {
    account.end(status);
    if (worker != null) {
      worker.answered(status >= 400);
    }
    next.complete();
  }

  @Override
  public void fail(ApiError error, boolean headSent) {
    account.end(error.status());
    if (worker != null) {
      worker.answered(true);
    }
    next.fail(error, headSent);
  }

  private static byte[] ascii(String text) {
    return text.getBytes(StandardCharsets.US_ASCII);
  }

  /**
   * A chunk's bytes, read where they lie when the buffer is on the heap (it is for answers from
   * upstreams) and copied once otherwise: a JSON answer is scanned without being decoded to text.
   */
  private record Bytes(byte[] array, int start, int end) {

    static Bytes of(Buffer data) {
      ByteBuf buf = ((BufferInternal) data).getByteBuf();
      if (buf.hasArray()) {
        int start = buf.arrayOffset() + buf.readerIndex();
        return new Bytes(buf.array(), start, start + buf.readableBytes());
      }
      byte[] copy = data.getBytes();
      return new Bytes(copy, 0, copy.length);
    }

    /** Where the last {@code needle} begins before {@code before}, or -1. */
    int lastIndexOf(byte[] needle, int before) {
      outer:
      for (int i = before - needle.length; i >= start; i--) {
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
      int at = lastIndexOf(key, end);
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
}
