package io.switchboard.server.llm;

import io.netty.buffer.ByteBuf;
import io.netty.handler.codec.http.HttpHeaders;
import io.switchboard.server.http.ApiError;
import io.switchboard.server.metrics.Metrics;
import io.vertx.core.buffer.Buffer;
import java.nio.charset.StandardCharsets;

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
  public void head(Worker worker, int status, HttpHeaders headers) {
    this.status = status;
    this.worker = worker;
    next.head(worker, status, headers);
  }

  @Override
  public void chunk(Buffer data) {
    meter(BufferBytes.of(data));
    next.chunk(data);
  }

  @Override
  public void lentChunk(ByteBuf bytes) {
    meter(BufferBytes.of(bytes));
    next.lentChunk(bytes);
  }

  private void meter(BufferBytes bytes) {
    account.firstByte();
    if (bytes.lastIndexOf(USAGE) >= 0) {
      long in = bytes.numberAfter(PROMPT_TOKENS);
      long out = bytes.numberAfter(COMPLETION_TOKENS);
      if (in >= 0 || out >= 0) {
        account.tokens(Math.max(0, in), Math.max(0, out));
      }
    }
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
}
