package io.switchboard.server.llm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.switchboard.server.http.ApiException;
import io.vertx.core.Vertx;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Where the router decides: which worker, who waits, in what order, and what a refusal says. */
class LlmRouterTest {

  private final Vertx vertx = Vertx.vertx();

  @AfterEach
  void close() {
    vertx.close().await();
  }

  private static Worker worker(String id, int maxConcurrency, String... models) {
    return new Worker(id, id, false, null, List.of(models), maxConcurrency, 0);
  }

  private static Lease granted(LlmRouter.Ticket ticket) {
    assertTrue(ticket.future().succeeded(), "granted at once: " + ticket.future().cause());
    return ticket.future().result();
  }

  private static String refusal(LlmRouter.Ticket ticket) {
    assertTrue(ticket.future().failed(), "refused");
    return ((ApiException) ticket.future().cause()).error().code();
  }

  @Test
  void theWorkerWithTheMostFreeCapacityForItsSizeGetsTheRequest() {
    LlmRouter router = new LlmRouter(vertx, 10, Duration.ofSeconds(5));
    Worker small = worker("small", 2, "m");
    Worker big = worker("big", 8, "m");
    router.register(small);
    router.register(big);

    Lease first = granted(router.acquire("m", Set.of(), null));
    assertEquals("small", first.worker().id(), "both idle and never used: a tie, and the first registered wins it");
    Lease second = granted(router.acquire("m", Set.of(), null));
    assertEquals("big", second.worker().id(), "8 of 8 free against 1 of 2");
    Lease third = granted(router.acquire("m", Set.of(), null));
    assertEquals("big", third.worker().id(), "7 of 8 free against 1 of 2");
    first.release();
    Lease fourth = granted(router.acquire("m", Set.of(), null));
    assertEquals("small", fourth.worker().id(), "2 of 2 free against 6 of 8");
    assertEquals(2, router.inFlight(big));
    assertEquals(1, router.inFlight(small));
    second.release();
    second.release();
    assertEquals(1, router.inFlight(big), "a lease gives its slot back once");
  }

  @Test
  void aPreferredWorkerWithAFreeSlotIsUsedAndAnExcludedOneNever() {
    LlmRouter router = new LlmRouter(vertx, 10, Duration.ofSeconds(5));
    router.register(worker("a", 4, "m"));
    router.register(worker("b", 4, "m"));

    assertEquals("b", granted(router.acquire("m", Set.of(), "b")).worker().id());
    for (int i = 0; i < 3; i++) {
      assertEquals("b", granted(router.acquire("m", Set.of("a"), null)).worker().id());
    }
    assertEquals("no_worker_available", refusal(router.acquire("m", Set.of("a", "b"), null)),
        "every worker that serves the model failed this request already");
  }

  @Test
  void whenEveryWorkerIsFullRequestsWaitInOrderAndAFullQueueRefuses() {
    LlmRouter router = new LlmRouter(vertx, 2, Duration.ofSeconds(30));
    router.register(worker("only", 1, "m"));
    Lease running = granted(router.acquire("m", Set.of(), null));

    LlmRouter.Ticket first = router.acquire("m", Set.of(), null);
    LlmRouter.Ticket second = router.acquire("m", Set.of(), null);
    assertFalse(first.future().isComplete());
    assertEquals(2, router.queued());
    assertEquals("worker_busy", refusal(router.acquire("m", Set.of(), null)), "the queue holds two");

    List<String> order = new ArrayList<>();
    first.future().onSuccess(lease -> order.add("first"));
    second.future().onSuccess(lease -> order.add("second"));
    running.release();
    assertEquals(List.of("first"), order, "a freed slot goes to the first waiter");
    first.future().result().release();
    assertEquals(List.of("first", "second"), order);
    second.future().result().release();
    assertEquals(0, router.queued());
    assertEquals(0, router.inFlight(router.worker("only").orElseThrow()));
  }

  @Test
  void aWaiterThatLeavesGivesUpItsPlaceAndOneThatWaitsTooLongIsRefused() {
    LlmRouter router = new LlmRouter(vertx, 10, Duration.ofMillis(200));
    router.register(worker("only", 1, "m"));
    Lease running = granted(router.acquire("m", Set.of(), null));

    LlmRouter.Ticket leaving = router.acquire("m", Set.of(), null);
    LlmRouter.Ticket staying = router.acquire("m", Set.of(), null);
    leaving.cancel();
    assertEquals(1, router.queued());
    running.release();
    assertTrue(staying.future().succeeded(), "the slot skipped the one that left");
    staying.future().result().release();

    Lease again = granted(router.acquire("m", Set.of(), null));
    LlmRouter.Ticket late = router.acquire("m", Set.of(), null);
    late.future().otherwiseEmpty().await();
    assertEquals("queue_timeout", refusal(late));
    again.release();
  }

  @Test
  void unknownModelsAreRefusedAtOnceAndWaitersOfAModelThatGoesAwayToo() {
    LlmRouter router = new LlmRouter(vertx, 10, Duration.ofSeconds(30));
    assertEquals("model_not_found", refusal(router.acquire("nobody-serves-this", Set.of(), null)));

    Worker only = worker("only", 1, "m");
    router.register(only);
    Lease running = granted(router.acquire("m", Set.of(), null));
    LlmRouter.Ticket waiting = router.acquire("m", Set.of(), null);
    router.update(only, null, null, true);
    assertEquals("no_worker_available", refusal(waiting), "its only worker is draining");
    running.release();

    router.remove(only);
    assertEquals("model_not_found", refusal(router.acquire("m", Set.of(), null)));
  }

  @Test
  void aWorkerThatRaisesItsConcurrencyServesTheQueueAtOnce() {
    LlmRouter router = new LlmRouter(vertx, 10, Duration.ofSeconds(30));
    Worker only = worker("only", 1, "m");
    router.register(only);
    granted(router.acquire("m", Set.of(), null));
    LlmRouter.Ticket waiting = router.acquire("m", Set.of(), null);

    router.update(only, null, 2, null);

    assertEquals("only", granted(waiting).worker().id());
  }
}
