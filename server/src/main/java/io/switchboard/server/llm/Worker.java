package io.switchboard.server.llm;

import io.switchboard.protocol.WorkerMessage;
import io.switchboard.worker.backend.Backend;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.atomic.LongAdder;

/**
 * A worker as the router sees it: what it serves, how much it may take, and how to reach it. The
 * mutable parts change only through {@link LlmRouter}, under its lock.
 */
public final class Worker {

  private final String id;
  private final String name;
  private final boolean local;
  private final Backend backend;
  private final Instant connectedAt = Instant.now();
  private volatile List<String> models;
  private volatile int maxConcurrency;
  private volatile int embeddingBatchSize;
  private volatile boolean draining;
  private volatile boolean loading;
  private volatile long lastHeardMillis = System.currentTimeMillis();
  private final LongAdder requests = new LongAdder();
  private final LongAdder errors = new LongAdder();
  int inFlight;
  long lastDispatch;

  public Worker(String id, String name, boolean local, Backend backend, List<String> models, int maxConcurrency,
      int embeddingBatchSize) {
    this.id = id;
    this.name = name;
    this.local = local;
    this.backend = backend;
    this.models = List.copyOf(models);
    this.maxConcurrency = maxConcurrency;
    this.embeddingBatchSize = embeddingBatchSize;
  }

  public String id() {
    return id;
  }

  public String name() {
    return name;
  }

  /** Whether this is the server's own in-process worker rather than one that dialed in. */
  public boolean local() {
    return local;
  }

  public Backend backend() {
    return backend;
  }

  public Instant connectedAt() {
    return connectedAt;
  }

  public List<String> models() {
    return models;
  }

  public int maxConcurrency() {
    return maxConcurrency;
  }

  public int embeddingBatchSize() {
    return embeddingBatchSize;
  }

  public boolean draining() {
    return draining;
  }

  /** Whether the worker said it is still loading models. */
  /** Draining over loading: a draining worker takes nothing new, whatever it still loads. */
  public WorkerMessage.Status status() {
    return draining() ? WorkerMessage.Status.DRAINING : loading() ? WorkerMessage.Status.LOADING : WorkerMessage.Status.READY;
  }

  public boolean loading() {
    return loading;
  }

  void loading(boolean now) {
    loading = now;
  }

  /** When the worker last sent anything: a heartbeat, an answer. */
  public long lastHeardMillis() {
    return lastHeardMillis;
  }

  void heard() {
    lastHeardMillis = System.currentTimeMillis();
  }

  /** Requests this worker answered since it connected. */
  public long requests() {
    return requests.sum();
  }

  /** Of those, the ones that ended in an error. */
  public long errors() {
    return errors.sum();
  }

  void answered(boolean failed) {
    requests.increment();
    if (failed) {
      errors.increment();
    }
  }

  void models(List<String> next) {
    models = List.copyOf(next);
  }

  void maxConcurrency(int next) {
    maxConcurrency = next;
  }

  void draining(boolean next) {
    draining = next;
  }

  boolean serves(String model) {
    return !draining && models.contains(model);
  }

  int free() {
    return maxConcurrency - inFlight;
  }

  @Override
  public String toString() {
    return "worker " + id + (name == null ? "" : " (" + name + ")");
  }
}
