package io.switchboard.server.metrics;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.switchboard.server.ServerConfig;
import io.switchboard.server.auth.Scope;
import io.switchboard.server.http.Capability;
import io.switchboard.server.http.Mount;
import io.switchboard.vertx.Blocking;
import java.util.Map;
import java.util.function.Supplier;

/**
 * {@code GET /metrics} (Prometheus text, public as spec 000 has it) and {@code GET /api/v1/metrics}
 * (spec 002's JSON, computed from the same traffic).
 */
public final class MetricsRoutes implements Capability {

  /** What the JSON metrics need from the rest of the server, read when asked. */
  public record Status(String serverStatus, Map<String, String> llmStatus, int queueLength) {}

  private final Metrics metrics;
  private final Map<String, ServerConfig.Price> prices;
  private final Supplier<Status> status;

  public MetricsRoutes(Metrics metrics, Map<String, ServerConfig.Price> prices, Supplier<Status> status) {
    this.metrics = metrics;
    this.prices = prices;
    this.status = status;
  }

  /** The Prometheus endpoint goes on the metrics port's router, which is the main one when it has no port of its own. */
  @Override
  public void mount(Mount mount) {
    mount.metricsWeb().get("/metrics").handler(ctx -> Blocking.call(ctx.vertx(), metrics::scrape).onComplete(ar -> {
      if (ar.failed()) {
        ctx.fail(ar.cause());
      } else {
        ctx.response().putHeader("Content-Type", "text/plain; version=0.0.4; charset=utf-8").end(ar.result());
      }
    }));
    mount.web().get("/api/v1/metrics").handler(mount.auth().require(Scope.INFERENCE))
        .handler(ctx -> ctx.response().putHeader("Content-Type", "application/json").end(json().toString()));
  }

  ObjectNode json() {
    Status now = status.get();
    long requests = 0;
    long succeeded = 0;
    double seconds = 0;
    double generationSeconds = 0;
    long tokensOut = 0;
    double costs = 0;
    boolean priced = false;
    for (Map.Entry<String, Metrics.ModelTotals> entry : metrics.totals().entrySet()) {
      Metrics.ModelTotals model = entry.getValue();
      requests += model.requests();
      succeeded += model.succeeded();
      seconds += model.seconds();
      generationSeconds += model.generationSeconds();
      tokensOut += model.tokensOut();
      ServerConfig.Price price = prices.get(entry.getKey());
      if (price != null) {
        priced = true;
        costs += (model.tokensIn() * price.input() + model.tokensOut() * price.output()) / 1_000_000.0;
      }
    }
    ObjectNode json = JsonNodeFactory.instance.objectNode().put("server_status", now.serverStatus());
    ObjectNode llm = json.putObject("llm_status");
    now.llmStatus().forEach(llm::put);
    putOrNull(json, "tokens_per_second", generationSeconds > 0 ? tokensOut / generationSeconds : null);
    putOrNull(json, "average_response_time", requests > 0 ? seconds / requests : null);
    json.put("total_requests", requests).put("active_tasks", metrics.inFlight()).put("queue_length", now.queueLength());
    putOrNull(json, "success_rate", requests > 0 ? 100.0 * succeeded / requests : null);
    putOrNull(json, "api_costs", priced ? costs : null);
    return json;
  }

  private static void putOrNull(ObjectNode json, String field, Double value) {
    if (value == null) {
      json.putNull(field);
    } else {
      json.put(field, value);
    }
  }
}
