package io.switchboard.server.llm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.switchboard.server.metrics.Metrics;
import io.switchboard.server.state.StateSource;
import java.time.Instant;
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

  @Override
  public JsonNode state() {
    ObjectNode state = JsonNodeFactory.instance.objectNode().put("status", status.get()).put("queued", router.queued());
    ArrayNode workers = state.putArray("workers");
    for (Worker worker : router.workers()) {
      ObjectNode w = workers.addObject().put("id", worker.id()).put("name", worker.name()).put("local", worker.local())
          .put("max_concurrency", worker.maxConcurrency()).put("in_flight", router.inFlight(worker))
          .put("draining", worker.draining())
          .put("status", worker.draining() ? "draining" : worker.loading() ? "loading" : "ready")
          .put("connected_at", worker.connectedAt().toString())
          .put("last_heard_at", Instant.ofEpochMilli(worker.lastHeardMillis()).toString())
          .put("requests", worker.requests()).put("errors", worker.errors());
      if (worker.backend() instanceof WorkerConnection dialedIn) {
        w.put("connections", dialedIn.connections().size());
      }
      worker.models().forEach(w.putArray("models")::add);
    }
    ArrayNode models = state.putArray("models");
    router.models().forEach(model -> {
      ObjectNode m = models.addObject().put("id", model.id());
      model.workers().forEach(m.putArray("workers")::add);
    });
    ArrayNode instances = state.putArray("instances");
    managed.list().forEach(instance -> instances.addObject().put("name", instance.id()).put("status", instance.status()));
    ObjectNode totals = state.putObject("aggregates");
    long requests = 0;
    long succeeded = 0;
    long tokensIn = 0;
    long tokensOut = 0;
    double seconds = 0;
    double generationSeconds = 0;
    for (Metrics.ModelTotals model : metrics.totals().values()) {
      requests += model.requests();
      succeeded += model.succeeded();
      tokensIn += model.tokensIn();
      tokensOut += model.tokensOut();
      seconds += model.seconds();
      generationSeconds += model.generationSeconds();
    }
    totals.put("requests", requests).put("succeeded", succeeded).put("in_flight", metrics.inFlight())
        .put("tokens_in", tokensIn).put("tokens_out", tokensOut)
        .put("tokens_per_second", generationSeconds > 0 ? tokensOut / generationSeconds : 0)
        .put("average_latency_seconds", requests > 0 ? seconds / requests : 0);
    return state;
  }
}
