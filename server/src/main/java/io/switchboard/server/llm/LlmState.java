package io.switchboard.server.llm;

import com.fasterxml.jackson.databind.JsonNode;
import io.switchboard.protocol.Json;
import io.switchboard.server.metrics.Metrics;
import io.switchboard.server.state.StateSource;
import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.function.Supplier;

/** The {@code llm} plugin's state: server status, workers, models, instances and traffic totals. */
public final class LlmState implements StateSource {

  private final LlmRouter router;
  private final ManagedModels managed;
  private final Metrics metrics;
  private final Supplier<String> status;

  /**
   * @param status {@code ready}, {@code not_ready} or {@code draining}, as the server sees itself
   */
  public LlmState(LlmRouter router, ManagedModels managed, Metrics metrics, Supplier<String> status) {
    this.router = router;
    this.managed = managed;
    this.metrics = metrics;
    this.status = status;
  }

  private static final String VIEW = StateSource.resource("llm.html");

  @Override
  public String id() {
    return "llm";
  }

  @Override
  public String view() {
    return VIEW;
  }

  /** The state as the dashboard reads it. */
  record View(String status, int queued, List<WorkerView> workers, List<ModelView> models, List<InstanceView> instances,
      Aggregates aggregates) {}

  /** @param connections the WebSockets of a dialed-in worker (its lanes too); absent for a local one */
  record WorkerView(String id, String name, boolean local, int maxConcurrency, int inFlight, boolean draining, String status,
      String connectedAt, String lastHeardAt, long requests, long errors, Integer connections, List<String> models) {}

  record ModelView(String id, List<String> workers) {}

  record InstanceView(String name, String status) {}

  record Aggregates(long requests, long succeeded, long inFlight, long tokensIn, long tokensOut, double tokensPerSecond,
      double averageLatencySeconds) {}

  @Override
  public JsonNode state() {
    List<WorkerView> workers = router.workers().stream().map(worker -> new WorkerView(worker.id(), worker.name(), worker.local(),
        worker.maxConcurrency(), router.inFlight(worker), worker.draining(), worker.status().wire(),
        worker.connectedAt().toString(), Instant.ofEpochMilli(worker.lastHeardMillis()).toString(), worker.requests(),
        worker.errors(), worker.backend() instanceof WorkerConnection dialedIn ? dialedIn.connections().size() : null,
        worker.models())).toList();
    List<ModelView> models = router.models().stream().map(model -> new ModelView(model.id(), model.workers())).toList();
    List<InstanceView> instances = managed.list().stream().map(instance -> new InstanceView(instance.id(), instance.status())).toList();
    return Json.MAPPER.valueToTree(new View(status.get(), router.queued(), workers, models, instances, aggregates()));
  }

  private Aggregates aggregates() {
    Metrics.Summary total = metrics.summary();
    return new Aggregates(total.requests(), total.succeeded(), metrics.inFlight(), total.tokensIn(), total.tokensOut(),
        Objects.requireNonNullElse(total.tokensPerSecond(), 0.0), Objects.requireNonNullElse(total.averageSeconds(), 0.0));
  }
}
