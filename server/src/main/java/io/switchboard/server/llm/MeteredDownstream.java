package io.switchboard.server.llm;

import io.netty.buffer.ByteBuf;
import io.netty.handler.codec.http.HttpHeaders;
import io.switchboard.server.http.ApiError;
import io.switchboard.server.metrics.Metrics;
import io.vertx.core.buffer.Buffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.function.LongConsumer;

/**
 * Passes an answer on while it accounts for it: status, time to first byte, and the token counts of
 * the {@code usage} object, wherever the backend's reads cut it. A JSON answer's usage is read where
 * it lies when one chunk holds it whole (an answer in one read, the usual case); otherwise the
 * answer's last bytes are kept and read at its end. A stream is passed on event by event: a chunk that ends inside an event keeps
 * that event's start until the rest comes (no client reads half an event anyway), so the usage event
 * is always read whole. When the server asked for usage on the client's behalf ({@code dropUsage}),
 * that event, the one with no choices, is left out of what the client gets.
 *
 * <p>Nearly every chunk of a stream ends where an event does and names no {@code usage}: it goes on
 * as it came, lent buffers included, after one backward scan for the key.
 */
final class MeteredDownstream implements Dispatch.Downstream {

  /** How much of a JSON answer's end is kept to find its usage: it is the last member of OpenAI's answers. */
  private static final int TAIL_BYTES = 2048;
  /** An event longer than this is passed on in pieces: no backend sends usage in such a one. */
  private static final int MAX_HELD_BYTES = 256 * 1024;
  private static final byte[] USAGE = ascii("\"usage\"");
  private static final byte[] PROMPT_TOKENS = ascii("\"prompt_tokens\"");
  private static final byte[] COMPLETION_TOKENS = ascii("\"completion_tokens\"");
  private static final byte[] EVENT_END = ascii("\n\n");
  private static final byte[] EVENT_END_CRLF = ascii("\n\r\n");
  private static final byte[] NO_CHOICES = ascii("\"choices\":[]");
  private static final byte[] NO_CHOICES_SPACED = ascii("\"choices\": []");

  private final Dispatch.Downstream next;
  private final Metrics.Request account;
  private final boolean dropUsage;
  /** Told the tokens the answer used, for a person's rate limits; null for the others. */
  private final LongConsumer tokensUsed;
  private int status = 200;
  private Worker worker;
  private boolean stream;
  /** A stream's event begun in an earlier chunk and not ended yet; null between events. */
  private byte[] held;
  /** A JSON answer's last bytes, {@code tailLength} of them at the array's end. */
  private byte[] tail;
  private int tailLength;
  private long promptTokens = -1;
  private long completionTokens = -1;
  /** A JSON answer's usage was read whole from one chunk. */
  private boolean counted;

  /**
   * @param dropUsage the client did not ask for usage and the server did for it: the usage event is
   *     the server's alone
   */
  MeteredDownstream(Dispatch.Downstream next, Metrics.Request account, boolean dropUsage, LongConsumer tokensUsed) {
    this.next = next;
    this.account = account;
    this.dropUsage = dropUsage;
    this.tokensUsed = tokensUsed;
  }

  @Override
  public void head(Worker worker, int status, HttpHeaders headers) {
    this.status = status;
    this.worker = worker;
    this.stream = Dispatch.Downstream.isEventStream(headers);
    next.head(worker, status, headers);
  }

  @Override
  public void chunk(Buffer data) {
    account.firstByte();
    if (stream) {
      if (passesAsItIs(BufferBytes.of(data))) {
        next.chunk(data);
      }
    } else {
      meterJson(BufferBytes.of(data));
      next.chunk(data);
    }
  }

  @Override
  public void lentChunk(ByteBuf bytes) {
    account.firstByte();
    if (stream) {
      if (passesAsItIs(BufferBytes.of(bytes))) {
        next.lentChunk(bytes);
      }
    } else {
      meterJson(BufferBytes.of(bytes));
      next.lentChunk(bytes);
    }
  }

  private void meterJson(BufferBytes bytes) {
    if (counted) {
      return;
    }
    if (tail == null) {
      int at = bytes.lastIndexOf(USAGE);
      BufferBytes usage = new BufferBytes(bytes.array(), Math.max(at, bytes.start()), bytes.end());
      if (at >= 0 && usage.numberAfter(PROMPT_TOKENS) >= 0 && usage.numberAfter(COMPLETION_TOKENS) >= 0) {
        readCounts(usage);
        counted = true;
        return;
      }
      tail = new byte[TAIL_BYTES];
    }
    keepTail(bytes);
  }

  /**
   * Whether a stream's chunk goes on as it came: it ends an event, none is held, and it names no
   * usage. Otherwise what of it goes on has gone, as a chunk of its own, and the rest is held.
   */
  private boolean passesAsItIs(BufferBytes bytes) {
    if (held == null && endsEvent(bytes) && bytes.lastIndexOf(USAGE) < 0) {
      return true;
    }
    byte[] joined = held == null ? new byte[bytes.end() - bytes.start()] : Arrays.copyOf(held, held.length + bytes.end() - bytes.start());
    System.arraycopy(bytes.array(), bytes.start(), joined, held == null ? 0 : held.length, bytes.end() - bytes.start());
    BufferBytes all = new BufferBytes(joined, 0, joined.length);
    int cut = Math.max(endOfLast(all, EVENT_END, 2), endOfLast(all, EVENT_END_CRLF, 3));
    if (cut <= 0 && joined.length <= MAX_HELD_BYTES) {
      held = joined;
      return false;
    }
    int through = cut <= 0 ? joined.length : cut;
    held = through == joined.length ? null : Arrays.copyOfRange(joined, through, joined.length);
    pass(new BufferBytes(joined, 0, through));
    return false;
  }

  /** Complete events: their usage read, the usage event left out where it is the server's, the rest passed on. */
  private void pass(BufferBytes events) {
    int at = events.lastIndexOf(USAGE);
    if (at < 0) {
      next.chunk(Buffer.buffer(Arrays.copyOfRange(events.array(), events.start(), events.end())));
      return;
    }
    BufferBytes from = new BufferBytes(events.array(), at, events.end());
    readCounts(from);
    int eventStart = Math.max(endOfLast(new BufferBytes(events.array(), events.start(), at), EVENT_END, 2),
        endOfLast(new BufferBytes(events.array(), events.start(), at), EVENT_END_CRLF, 3));
    eventStart = Math.max(eventStart, events.start());
    int endMark = events.indexOf(EVENT_END, at);
    int eventEnd = endMark < 0 ? events.end() : endMark + 2;
    BufferBytes event = new BufferBytes(events.array(), eventStart, eventEnd);
    boolean serversOwn = dropUsage && (event.indexOf(NO_CHOICES, eventStart) >= 0 || event.indexOf(NO_CHOICES_SPACED, eventStart) >= 0);
    Buffer out = Buffer.buffer(events.end() - events.start());
    out.appendBytes(events.array(), events.start(), eventStart - events.start());
    if (!serversOwn) {
      out.appendBytes(events.array(), eventStart, eventEnd - eventStart);
    }
    out.appendBytes(events.array(), eventEnd, events.end() - eventEnd);
    if (out.length() > 0) {
      next.chunk(out);
    }
  }

  private static boolean endsEvent(BufferBytes bytes) {
    int n = bytes.end() - bytes.start();
    return n >= 2 && bytes.array()[bytes.end() - 1] == '\n'
        && (bytes.array()[bytes.end() - 2] == '\n' || n >= 4 && bytes.array()[bytes.end() - 2] == '\r'
            && bytes.array()[bytes.end() - 3] == '\n');
  }

  /** Just past the last {@code mark} (whose last {@code length} bytes end an event), or -1. */
  private static int endOfLast(BufferBytes bytes, byte[] mark, int length) {
    int at = bytes.lastIndexOf(mark);
    return at < 0 ? -1 : at + length;
  }

  private void keepTail(BufferBytes bytes) {
    if (tail == null) {
      tail = new byte[TAIL_BYTES];
    }
    int length = bytes.end() - bytes.start();
    if (length >= TAIL_BYTES) {
      System.arraycopy(bytes.array(), bytes.end() - TAIL_BYTES, tail, 0, TAIL_BYTES);
      tailLength = TAIL_BYTES;
      return;
    }
    int keep = Math.min(tailLength, TAIL_BYTES - length);
    System.arraycopy(tail, TAIL_BYTES - keep, tail, TAIL_BYTES - keep - length, keep);
    System.arraycopy(bytes.array(), bytes.start(), tail, TAIL_BYTES - length, length);
    tailLength = keep + length;
  }

  private void readCounts(BufferBytes bytes) {
    long in = bytes.numberAfter(PROMPT_TOKENS);
    long out = bytes.numberAfter(COMPLETION_TOKENS);
    if (in >= 0 || out >= 0) {
      promptTokens = in;
      completionTokens = out;
    }
  }

  /** What is still held goes on, and the counts found are booked. */
  private void settle() {
    if (held != null) {
      byte[] rest = held;
      held = null;
      pass(new BufferBytes(rest, 0, rest.length));
    }
    if (!counted && tail != null) {
      BufferBytes end = new BufferBytes(tail, TAIL_BYTES - tailLength, TAIL_BYTES);
      if (end.lastIndexOf(USAGE) >= 0) {
        readCounts(end);
      }
    }
    if (promptTokens >= 0 || completionTokens >= 0) {
      account.tokens(Math.max(0, promptTokens), Math.max(0, completionTokens));
      if (tokensUsed != null) {
        tokensUsed.accept(Math.max(0, promptTokens) + Math.max(0, completionTokens));
      }
    }
  }

  @Override
  public void complete() {
    settle();
    account.end(status);
    if (worker != null) {
      worker.answered(status >= 400);
    }
    next.complete();
  }

  @Override
  public void fail(ApiError error, boolean headSent) {
    settle();
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
