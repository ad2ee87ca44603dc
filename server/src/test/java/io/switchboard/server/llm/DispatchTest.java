package io.switchboard.server.llm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.handler.codec.http.DefaultHttpHeaders;
import io.netty.handler.codec.http.HttpHeaders;
import io.switchboard.protocol.Failures;
import io.switchboard.server.http.ApiError;
import io.switchboard.worker.backend.Backend;
import io.switchboard.worker.backend.BackendCall;
import io.switchboard.worker.backend.BackendRequest;
import io.switchboard.worker.backend.Failure;
import io.switchboard.worker.backend.ResponseSink;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Where a request's fate is decided once it has a worker: a failure before the first byte of the
 * answer sends it to another worker, a failure after it reaches the client, and a client that
 * leaves or a worker that goes silent frees the slot. The workers here stand in for dialed-in ones
 * at the {@link Backend} contract: each request they get waits for the test to answer it.
 */
class DispatchTest {

  private final Vertx vertx = Vertx.vertx();
  private final LlmRouter router = new LlmRouter(vertx, 10, Duration.ofSeconds(5));
  private final SilenceWatch silence = new SilenceWatch(vertx, Duration.ofMinutes(1));

  @AfterEach
  void close() {
    silence.close();
    vertx.close().await();
  }

  /** A worker whose requests wait for the test: it answers, fails or stays silent as told. */
  private static final class HeldWorker implements Backend {
    final List<ResponseSink> requests = new ArrayList<>();
    int cancelled;

    @Override
    public BackendCall call(BackendRequest request, ResponseSink sink) {
      requests.add(sink);
      return new BackendCall() {
        @Override
        public void cancel() {
          cancelled++;
        }

        @Override
        public void hold(boolean held) {
        }
      };
    }

    @Override
    public Future<List<String>> models() {
      return Future.succeededFuture(List.of("m"));
    }

    ResponseSink last() {
      return requests.getLast();
    }
  }

  /** What the client got. */
  private static final class Client implements Dispatch.Downstream {
    String answeredBy;
    final StringBuilder body = new StringBuilder();
    boolean complete;
    ApiError error;
    Boolean headSentBeforeError;

    @Override
    public void head(Worker worker, int status, HttpHeaders headers) {
      answeredBy = worker.id();
    }

    @Override
    public void chunk(Buffer data) {
      body.append(data.toString());
    }

    @Override
    public void complete() {
      complete = true;
    }

    @Override
    public void fail(ApiError error, boolean headSent) {
      this.error = error;
      this.headSentBeforeError = headSent;
    }
  }

  private HeldWorker worker(String id) {
    HeldWorker backend = new HeldWorker();
    router.register(new Worker(id, id, false, backend, List.of("m"), 4, 0));
    return backend;
  }

  private Dispatch dispatch(Client client) {
    Dispatch dispatch = new Dispatch(router, silence, "m", new BackendRequest("POST", "/chat/completions", Map.of(), false,
        Buffer.buffer("{}")), null, client);
    dispatch.start();
    return dispatch;
  }

  private static void answer(ResponseSink sink, String text) {
    sink.head(200, new DefaultHttpHeaders());
    sink.chunk(Buffer.buffer(text));
    sink.end(null);
  }

  private int inFlight() {
    return router.workers().stream().mapToInt(router::inFlight).sum();
  }

  @Test
  void aWorkerThatFailsBeforeAnsweringIsLeftOutAndAnotherAnswers() {
    HeldWorker a = worker("a");
    HeldWorker b = worker("b");
    Client client = new Client();
    dispatch(client);
    HeldWorker first = a.requests.isEmpty() ? b : a;
    HeldWorker second = first == a ? b : a;

    first.last().end(new Failure(Failures.WORKER_LOST, "connection lost"));
    assertEquals(1, second.requests.size(), "the request went to the other worker");
    answer(second.last(), "hello");

    assertTrue(client.complete);
    assertNull(client.error);
    assertEquals(first == a ? "b" : "a", client.answeredBy);
    assertEquals("hello", client.body.toString());
    assertEquals(1, first.requests.size(), "the failed worker was not tried again");
    assertEquals(0, inFlight(), "both slots are free");
  }

  @Test
  void aWorkerThatFailsAfterTheFirstByteEndsTheRequestThereAndNothingIsSentAgain() {
    HeldWorker a = worker("a");
    HeldWorker b = worker("b");
    Client client = new Client();
    dispatch(client);
    HeldWorker first = a.requests.isEmpty() ? b : a;

    first.last().head(200, new DefaultHttpHeaders());
    first.last().chunk(Buffer.buffer("partial"));
    first.last().end(new Failure(Failures.WORKER_LOST, "connection lost"));

    assertEquals(1, a.requests.size() + b.requests.size(), "sent once: the client has part of an answer");
    assertEquals(Boolean.TRUE, client.headSentBeforeError);
    assertEquals(Failures.WORKER_LOST, client.error.code());
    assertFalse(client.complete);
    assertEquals(0, inFlight());
  }

  @Test
  void aFailureThatIsNotSafeToRepeatReachesTheClientAtOnce() {
    HeldWorker a = worker("a");
    HeldWorker b = worker("b");
    Client client = new Client();
    dispatch(client);

    (a.requests.isEmpty() ? b : a).last().end(new Failure(Failures.UPSTREAM_ERROR, "the upstream broke off"));

    assertEquals(1, a.requests.size() + b.requests.size(), "an upstream that may have done the work is not asked twice");
    assertEquals(Boolean.FALSE, client.headSentBeforeError);
    assertEquals(502, client.error.status());
    assertEquals(0, inFlight());
  }

  @Test
  void whenNoOtherWorkerServesTheModelTheClientHearsTheLastFailure() {
    HeldWorker only = worker("only");
    Client client = new Client();
    dispatch(client);

    only.last().end(new Failure(Failures.UPSTREAM_UNREACHABLE, "cannot reach upstream"));

    assertEquals(1, only.requests.size());
    assertEquals(Failures.UPSTREAM_UNREACHABLE, client.error.code());
    assertTrue(client.error.message().contains("cannot reach upstream; no other worker serves m"), client.error.message());
    assertEquals(0, inFlight());
  }

  @Test
  void aClientThatLeavesCancelsTheWorkersCallAndFreesTheSlot() {
    HeldWorker a = worker("a");
    Client client = new Client();
    Dispatch dispatch = dispatch(client);
    assertEquals(1, inFlight());

    dispatch.cancel();
    a.last().head(200, new DefaultHttpHeaders());
    a.last().end(null);

    assertEquals(1, a.cancelled);
    assertEquals(0, inFlight());
    assertNull(client.answeredBy, "nothing reaches a client that left");
    assertFalse(client.complete);
  }

  @Test
  void aWorkerSilentPastTheTimeoutEndsTheRequestWith504() {
    HeldWorker a = worker("a");
    Client client = new Client();
    Dispatch dispatch = dispatch(client);

    dispatch.checkSilence(System.nanoTime() + Duration.ofSeconds(1).toNanos());

    assertEquals(504, client.error.status());
    assertEquals(1, a.cancelled, "the worker hears that the request is over");
    assertEquals(0, inFlight());
    a.last().end(null);
    assertFalse(client.complete, "a late answer goes nowhere");
  }

  @Test
  void aRequestQueuedBehindBusyWorkersThatIsCancelledLeavesTheQueue() {
    HeldWorker a = new HeldWorker();
    router.register(new Worker("a", "a", false, a, List.of("m"), 1, 0));
    Client first = new Client();
    dispatch(first);
    Client waiting = new Client();
    Dispatch queued = dispatch(waiting);
    assertEquals(1, router.queued());

    queued.cancel();
    assertEquals(0, router.queued());
    answer(a.last(), "done");
    assertTrue(first.complete);
    assertEquals(1, a.requests.size(), "the cancelled request never reached the worker");
    assertEquals(0, inFlight());
  }
}
