package io.switchboard.server.llm;

import io.netty.buffer.ByteBuf;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaders;
import io.switchboard.protocol.Failures;
import io.switchboard.server.http.ApiError;
import io.switchboard.server.http.ApiException;
import io.switchboard.worker.backend.BackendCall;
import io.switchboard.worker.backend.BackendRequest;
import io.switchboard.worker.backend.Failure;
import io.switchboard.worker.backend.ResponseSink;
import io.vertx.core.buffer.Buffer;
import java.util.HashSet;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client request on its way through the router: it takes a worker slot, runs the request
 * there, and relays the answer to a {@link Downstream}. A worker that fails before the answer's
 * head reached the client is left out and the request goes to another; after that, the failure
 * reaches the client. A worker silent for the request timeout ends the request with 504. A client
 * that reads slower than the worker answers pauses the answer at its source ({@link #hold}).
 */
public final class Dispatch implements BackendCall, SilenceWatch.Watched {

  private static final Logger log = LoggerFactory.getLogger(Dispatch.class);
  private static final int MAX_ATTEMPTS = 4;

  /** Where the answer goes. Exactly one of {@link #complete} or {@link #fail} ends it. */
  public interface Downstream {
    /** The headers are the downstream's to send as they are or change. */
    void head(Worker worker, int status, HttpHeaders headers);

    /** Whether an answer with these headers is a server-sent event stream, to be flushed event by event. */
    static boolean isEventStream(HttpHeaders headers) {
      String type = headers.get(HttpHeaderNames.CONTENT_TYPE);
      return type != null && type.regionMatches(true, 0, "text/event-stream", 0, 17);
    }

    void chunk(Buffer data);

    /** Bytes lent for the length of this call, as {@link ResponseSink#lentChunk} lends them; copied by default. */
    default void lentChunk(ByteBuf bytes) {
      chunk(ResponseSink.copyOf(bytes));
    }

    void complete();

    /** The request failed; {@code headSent} says whether {@link #head} was already called. */
    void fail(ApiError error, boolean headSent);
  }

  private final LlmRouter router;
  private final SilenceWatch silence;
  private final String model;
  private final BackendRequest request;
  private final String preferred;
  private final Downstream downstream;
  /**
   * Workers this request was sent to. Immutable: nearly every request has one, and the router's
   * ticket keeps an immutable set as it is instead of copying it.
   */
  private Set<String> tried = Set.of();

  private Failure lastFailure;
  private int attempt;
  private LlmRouter.Ticket ticket;
  private Lease lease;
  private BackendCall call;
  private boolean headSent;
  private boolean finished;
  /**
   * The client asked to hold the answer back. The request timeout then counts from the pause: a
   * client that takes nothing for that long loses the request, so it cannot keep a slot forever.
   */
  private boolean paused;
  /** Written under the lock, read by the silence sweep without it. */
  private volatile long lastActivity;

  Dispatch(LlmRouter router, SilenceWatch silence, String model, BackendRequest request, String preferred,
      Downstream downstream) {
    this.router = router;
    this.silence = silence;
    this.model = model;
    this.request = request;
    this.preferred = preferred;
    this.downstream = downstream;
  }

  public synchronized void start() {
    next();
  }

  /** The client went away: leave the queue or abort at the worker, and give the slot back. */
  @Override
  public void cancel() {
    LlmRouter.Ticket waiting;
    BackendCall running;
    synchronized (this) {
      if (finished) {
        return;
      }
      finished = true;
      waiting = ticket;
      running = call;
    }
    silence.unwatch(this);
    if (waiting != null) {
      waiting.cancel();
    }
    if (running != null) {
      running.cancel();
    }
    releaseLease();
  }

  /**
   * While the client's connection cannot take more, the worker stops reading the answer from its
   * backend, so it waits there instead of in this server's memory. The backend hears it under the
   * lock, so pauses and resumes reach the worker in the order the client made them.
   */
  @Override
  public synchronized void hold(boolean pause) {
    if (finished || paused == pause) {
      return;
    }
    paused = pause;
    touch();
    if (call != null) {
      call.hold(pause);
    }
  }

  private void next() {
    int current = ++attempt;
    LlmRouter.Ticket t = router.acquire(model, tried, tried.isEmpty() ? preferred : null);
    ticket = t;
    t.future().onComplete(ar -> {
      if (ar.succeeded()) {
        onSlot(current, ar.result());
      } else {
        onNoSlot(current, ar.cause());
      }
    });
  }

  private void onSlot(int current, Lease granted) {
    synchronized (this) {
      if (finished || current != attempt) {
        granted.release();
        return;
      }
      ticket = null;
      lease = granted;
      tried = with(tried, granted.worker().id());
      touch();
      silence.watch(this);
    }
    BackendCall started = granted.worker().backend().call(request, new Attempt(current));
    synchronized (this) {
      if (current == attempt && !finished) {
        call = started;
        if (paused) {
          started.hold(true);
        }
        return;
      }
    }
    if (finished) {
      started.cancel();
    }
  }

  private static Set<String> with(Set<String> set, String element) {
    if (set.isEmpty()) {
      return Set.of(element);
    }
    Set<String> more = new HashSet<>(set);
    more.add(element);
    return Set.copyOf(more);
  }

  private void onNoSlot(int current, Throwable cause) {
    synchronized (this) {
      if (finished || current != attempt) {
        return;
      }
      ticket = null;
      ApiError error = ApiException.of(cause);
      boolean nowhereLeft = "model_not_found".equals(error.code()) || "no_worker_available".equals(error.code());
      if (lastFailure != null && nowhereLeft) {
        finish(ApiError.upstream(lastFailure.code(), lastFailure.message() + "; no other worker serves " + model));
      } else {
        finish(error);
      }
    }
  }

  private void finish(ApiError error) {
    finished = true;
    silence.unwatch(this);
    downstream.fail(error, headSent);
  }

  private void releaseLease() {
    Lease held;
    synchronized (this) {
      held = lease;
      lease = null;
    }
    if (held != null) {
      held.release();
    }
  }

  private void touch() {
    lastActivity = System.nanoTime();
  }

  @Override
  public void end(ApiError error) {
    BackendCall running;
    synchronized (this) {
      if (finished) {
        return;
      }
      running = call;
      finish(error);
    }
    if (running != null) {
      running.cancel();
    }
    releaseLease();
  }

  @Override
  public void checkSilence(long deadlineNanos) {
    BackendCall running;
    synchronized (this) {
      if (finished) {
        silence.unwatch(this);
        return;
      }
      if (lease == null || lastActivity - deadlineNanos > 0) {
        return;
      }
      running = call;
      if (paused) {
        log.warn("request for {} on {} ended: its client took nothing for {} ms", model, lease.worker(), silence.timeout().toMillis());
      } else {
        log.warn("request for {} on {} timed out: nothing for {} ms", model, lease.worker(), silence.timeout().toMillis());
      }
      finish(ApiError.timeout());
    }
    if (running != null) {
      running.cancel();
    }
    releaseLease();
  }

  /** The sink for one attempt; events from an attempt that was superseded are dropped. */
  private final class Attempt implements ResponseSink {
    private final int number;

    Attempt(int number) {
      this.number = number;
    }

    private boolean live() {
      return !finished && number == attempt;
    }

    @Override
    public void head(int status, HttpHeaders headers) {
      synchronized (Dispatch.this) {
        if (!live()) {
          return;
        }
        headSent = true;
        touch();
        downstream.head(lease.worker(), status, headers);
      }
    }

    @Override
    public void chunk(Buffer data) {
      synchronized (Dispatch.this) {
        if (!live()) {
          return;
        }
        touch();
        downstream.chunk(data);
      }
    }

    @Override
    public void lentChunk(ByteBuf bytes) {
      synchronized (Dispatch.this) {
        if (!live()) {
          return;
        }
        touch();
        downstream.lentChunk(bytes);
      }
    }

    @Override
    public void end(Failure failure) {
      Worker worker;
      synchronized (Dispatch.this) {
        if (!live()) {
          return;
        }
        worker = lease.worker();
        call = null;
        if (failure == null) {
          finished = true;
          silence.unwatch(Dispatch.this);
          downstream.complete();
        } else if (!headSent && Failures.retriable(failure.code()) && attempt < MAX_ATTEMPTS) {
          log.warn("{} failed before answering ({}: {}); trying another worker", worker, failure.code(), failure.message());
          lastFailure = failure;
          silence.unwatch(Dispatch.this);
        } else {
          log.warn("{} failed {} ({}: {})", worker, headSent ? "mid-answer" : "before answering", failure.code(), failure.message());
          finish(ApiError.upstream(failure.code(), failure.message()));
        }
      }
      releaseLease();
      synchronized (Dispatch.this) {
        if (!finished && number == attempt) {
          next();
        }
      }
    }
  }
}
