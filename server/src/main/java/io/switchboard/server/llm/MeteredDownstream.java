package io.switchboard.server.llm;

import io.switchboard.server.http.ApiError;
import io.switchboard.server.metrics.Metrics;
import io.vertx.core.buffer.Buffer;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * Passes an answer on unchanged while it accounts for it: status, time to first byte, and the token
 * counts of the {@code usage} object when the backend sends one (the last chunk of a stream, or the
 * whole JSON answer).
 */
final class MeteredDownstream implements Dispatch.Downstream {

  private static final byte[] USAGE = "\"usage\"".getBytes(StandardCharsets.US_ASCII);

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
    if (contains(data, USAGE)) {
      String text = data.toString(StandardCharsets.UTF_8);
      long in = number(text, "\"prompt_tokens\":");
      long out = number(text, "\"completion_tokens\":");
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

  /** One copy into an array and a plain loop: per-byte reads through the buffer cost a bounds check each. */
  private static boolean contains(Buffer data, byte[] needle) {
    byte[] bytes = data.getBytes();
    byte first = needle[0];
    int last = bytes.length - needle.length;
    outer:
    for (int i = 0; i <= last; i++) {
      if (bytes[i] != first) {
        continue;
      }
      for (int j = 1; j < needle.length; j++) {
        if (bytes[i + j] != needle[j]) {
          continue outer;
        }
      }
      return true;
    }
    return false;
  }

  /** The whole number after {@code key} (spaces allowed), or -1. */
  private static long number(String text, String key) {
    int at = text.lastIndexOf(key);
    if (at < 0) {
      at = text.lastIndexOf(key.replace(":", ": "));
      if (at < 0) {
        return -1;
      }
      at += 1;
    }
    int i = at + key.length();
    while (i < text.length() && text.charAt(i) == ' ') {
      i++;
    }
    int start = i;
    while (i < text.length() && Character.isDigit(text.charAt(i))) {
      i++;
    }
    return i > start ? Long.parseLong(text.substring(start, i)) : -1;
  }
}
