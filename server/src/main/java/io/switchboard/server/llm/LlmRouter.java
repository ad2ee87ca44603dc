package io.switchboard.server.llm;

import io.switchboard.server.http.ApiError;
import io.switchboard.server.http.ApiException;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CopyOnWriteArrayList;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The registry of workers and the scheduler over them. A request for a model gets a slot on the
 * worker with the most free capacity relative to its {@code max_concurrency}; when every such worker
 * is full it waits in one bounded FIFO queue, and the first waiter that some freed slot can serve
 * takes it.
 *
 * <p>All state is guarded by this object's lock. Futures are completed only after the lock is
 * released, so callers may call back into the router from their callbacks.
 */
public final class LlmRouter {

  private static final Logger log = LoggerFactory.getLogger(LlmRouter.class);

  /** A model as the models endpoints list it. */
  public record ModelEntry(String id, long created, List<String> workers) {}

  private final Vertx vertx;
  private final int queueCapacity;
  private final Duration queueTimeout;
  private final Map<String, Worker> workers = new LinkedHashMap<>();
  private final Map<String, Long> firstSeen = new TreeMap<>();
  private final ArrayDeque<Ticket> queue = new ArrayDeque<>();
  private final List<Runnable> changeListeners = new CopyOnWriteArrayList<>();

  public LlmRouter(Vertx vertx, int queueCapacity, Duration queueTimeout) {
    this.vertx = vertx;
    this.queueCapacity = queueCapacity;
    this.queueTimeout = queueTimeout;
  }

  /** Runs after every change of the worker set or of what a worker offers. */
  public void onChange(Runnable listener) {
    changeListeners.add(listener);
  }

  /** Adds a worker; returns the one it replaces (same id), if any. */
  public Optional<Worker> register(Worker worker) {
    Worker replaced;
    synchronized (this) {
      replaced = workers.put(worker.id(), worker);
      noteModels(worker.models());
    }
    log.info("{} registered{}: models {}, max concurrency {}", worker, replaced == null ? "" : " (replacing its old connection)",
        worker.models(), worker.maxConcurrency());
    changed();
    return Optional.ofNullable(replaced);
  }

  /** Removes the worker if it is still the one registered under its id. */
  public void remove(Worker worker) {
    boolean removed;
    synchronized (this) {
      removed = workers.remove(worker.id(), worker);
    }
    if (removed) {
      log.info("{} left", worker);
      changed();
    }
  }

  /** Applies a worker's status update; null fields stay as they are. */
  public void update(Worker worker, List<String> models, Integer maxConcurrency, Boolean draining) {
    synchronized (this) {
      if (models != null) {
        worker.models(models);
        noteModels(models);
      }
      if (maxConcurrency != null) {
        worker.maxConcurrency(maxConcurrency);
      }
      if (draining != null) {
        worker.draining(draining);
      }
    }
    log.info("{} updated: models {}, max concurrency {}{}", worker, worker.models(), worker.maxConcurrency(),
        worker.draining() ? ", draining" : "");
    changed();
  }

  public synchronized List<Worker> workers() {
    return List.copyOf(workers.values());
  }

  public synchronized Optional<Worker> worker(String id) {
    return Optional.ofNullable(workers.get(id));
  }

  /** Every model some connected worker advertises, sorted by id. */
  public synchronized List<ModelEntry> models() {
    Map<String, List<String>> byModel = new TreeMap<>();
    for (Worker worker : workers.values()) {
      for (String model : worker.models()) {
        byModel.computeIfAbsent(model, m -> new ArrayList<>()).add(worker.name() == null ? worker.id() : worker.name());
      }
    }
    List<ModelEntry> entries = new ArrayList<>();
    byModel.forEach((id, names) -> entries.add(new ModelEntry(id, firstSeen.getOrDefault(id, 0L), List.copyOf(names))));
    return entries;
  }

  public Optional<ModelEntry> model(String id) {
    return models().stream().filter(m -> m.id().equals(id)).findFirst();
  }

  /** The workers that can take requests for this model now (not draining), in registration order. */
  public synchronized List<Worker> serving(String model) {
    return workers.values().stream().filter(w -> w.serves(model)).toList();
  }

  /**
   * Asks for a slot on a worker serving {@code model}.
   *
   * @param excluded ids of workers not to use (they already failed this request)
   * @param preferred a worker to use if it has a free slot, or null
   * @return a ticket whose future completes with the lease, or fails with an {@link ApiException}:
   *     404 when no worker has the model, 503 when the queue is full or the wait timed out
   */
  public Ticket acquire(String model, Set<String> excluded, String preferred) {
    Ticket ticket = new Ticket(model, excluded);
    Lease lease = null;
    ApiError refusal = null;
    synchronized (this) {
      Worker best = pick(model, excluded, preferred);
      if (best != null) {
        lease = take(best);
      } else if (!known(model)) {
        refusal = ApiError.modelNotFound(model);
      } else if (!serviceable(model, excluded)) {
        refusal = ApiError.noWorkerAvailable(model);
      } else if (queue.size() >= queueCapacity) {
        refusal = ApiError.workerBusy();
      } else {
        queue.addLast(ticket);
        ticket.timer = vertx.setTimer(Math.max(1, queueTimeout.toMillis()), t -> expire(ticket));
      }
    }
    if (lease != null) {
      ticket.promise.complete(lease);
    } else if (refusal != null) {
      ticket.promise.fail(new ApiException(refusal));
    }
    return ticket;
  }

  /** How many requests the worker is running now. */
  public synchronized int inFlight(Worker worker) {
    return worker.inFlight;
  }

  /** Requests waiting for a slot now. */
  public synchronized int queued() {
    return queue.size();
  }

  /**
   * Gives a slot back and hands it to a waiter, under one hold of the lock: every request ends here,
   * from whichever event loop, and the lock's cache line moves between their cores each time.
   */
  void release(Worker worker) {
    List<Runnable> completions;
    synchronized (this) {
      worker.inFlight--;
      if (queue.isEmpty()) {
        return;
      }
      completions = grantQueued();
    }
    completions.forEach(Runnable::run);
  }

  private Worker pick(String model, Set<String> excluded, String preferred) {
    Worker best = null;
    for (Worker w : workers.values()) {
      if (!w.serves(model) || w.free() <= 0 || excluded.contains(w.id())) {
        continue;
      }
      if (w.id().equals(preferred)) {
        return w;
      }
      if (best == null || better(w, best)) {
        best = w;
      }
    }
    return best;
  }

  /** More free capacity relative to its size wins; then fewer in flight; then the one idle longest. */
  private static boolean better(Worker a, Worker b) {
    long left = (long) a.free() * b.maxConcurrency();
    long right = (long) b.free() * a.maxConcurrency();
    if (left != right) {
      return left > right;
    }
    if (a.inFlight != b.inFlight) {
      return a.inFlight < b.inFlight;
    }
    return a.lastDispatch < b.lastDispatch;
  }

  private Lease take(Worker worker) {
    worker.inFlight++;
    worker.lastDispatch = System.nanoTime();
    return new Lease(worker, this);
  }

  private boolean known(String model) {
    for (Worker w : workers.values()) {
      if (w.models().contains(model)) {
        return true;
      }
    }
    return false;
  }

  private boolean serviceable(String model, Set<String> excluded) {
    for (Worker w : workers.values()) {
      if (w.serves(model) && !excluded.contains(w.id())) {
        return true;
      }
    }
    return false;
  }

  private void noteModels(Collection<String> models) {
    long now = System.currentTimeMillis() / 1000;
    for (String model : models) {
      firstSeen.putIfAbsent(model, now);
    }
  }

  private void changed() {
    dispatchQueued();
    changeListeners.forEach(Runnable::run);
  }

  private void dispatchQueued() {
    List<Runnable> completions;
    synchronized (this) {
      completions = grantQueued();
    }
    completions.forEach(Runnable::run);
  }

  /**
   * Hands freed slots to the first waiters that can use them and fails waiters whose model is gone;
   * called under the lock, it returns the futures' completions to run once the lock is released.
   */
  private List<Runnable> grantQueued() {
    List<Runnable> completions = new ArrayList<>();
    for (Iterator<Ticket> it = queue.iterator(); it.hasNext(); ) {
      Ticket ticket = it.next();
      Worker best = pick(ticket.model, ticket.excluded, null);
      if (best != null) {
        it.remove();
        vertx.cancelTimer(ticket.timer);
        Lease lease = take(best);
        completions.add(() -> ticket.promise.complete(lease));
      } else if (!serviceable(ticket.model, ticket.excluded)) {
        it.remove();
        vertx.cancelTimer(ticket.timer);
        ApiError error = known(ticket.model) ? ApiError.noWorkerAvailable(ticket.model) : ApiError.modelNotFound(ticket.model);
        completions.add(() -> ticket.promise.fail(new ApiException(error)));
      }
    }
    return completions;
  }

  /** Fails every request waiting in the queue with {@code error}. */
  public void rejectQueued(ApiError error) {
    List<Ticket> rejected;
    synchronized (this) {
      rejected = List.copyOf(queue);
      queue.clear();
    }
    rejected.forEach(ticket -> {
      vertx.cancelTimer(ticket.timer);
      ticket.promise.tryFail(new ApiException(error));
    });
  }

  private void expire(Ticket ticket) {
    boolean removed;
    synchronized (this) {
      removed = queue.remove(ticket);
    }
    if (removed) {
      ticket.promise.tryFail(new ApiException(ApiError.queueTimeout()));
    }
  }

  /** A request's claim on a slot: granted at once, or waiting in the queue. */
  public final class Ticket {
    private final String model;
    private final Set<String> excluded;
    private final Promise<Lease> promise = Promise.promise();
    private long timer = -1;

    private Ticket(String model, Set<String> excluded) {
      this.model = model;
      this.excluded = Set.copyOf(excluded);
    }

    public Future<Lease> future() {
      return promise.future();
    }

    /** Leaves the queue (the client went away); a slot already granted is given back. */
    public void cancel() {
      boolean removed;
      synchronized (LlmRouter.this) {
        removed = queue.remove(this);
      }
      if (removed) {
        vertx.cancelTimer(timer);
        promise.tryFail(new ApiException(ApiError.internal("cancelled")));
      } else if (promise.future().succeeded()) {
        promise.future().result().release();
      }
    }
  }
}
