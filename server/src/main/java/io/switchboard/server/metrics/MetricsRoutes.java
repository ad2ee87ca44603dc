package io.switchboard.server.metrics;

import com.fasterxml.jackson.annotation.JsonInclude;
import io.switchboard.server.ServerConfig;
import io.switchboard.server.auth.Scope;
import io.switchboard.server.http.Capability;
import io.switchboard.server.http.JsonReply;
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
    mount.web().get("/api/v1/metrics").handler(mount.auth().require(Scope.OPERATIONS))
        .handler(ctx -> JsonReply.send(ctx.response(), 200, json()));
  }

  /** Spec 002's JSON metrics; a rate with nothing to divide yet is null, and written as null. */
  @JsonInclude(JsonInclude.Include.ALWAYS)
  record Report(String serverStatus, Map<String, String> llmStatus, Double tokensPerSecond, Double averageResponseTime,
      long totalRequests, int activeTasks, int queueLength, Double successRate, Double apiCosts) {}

  Report json() {
    Status now = status.get();
    Metrics.Summary total = metrics.summary();
    double costs = 0;
    boolean priced = false;
    for (Map.Entry<String, Metrics.ModelTotals> entry : metrics.totals().entrySet()) {
      ServerConfig.Price price = prices.get(entry.getKey());
      if (price != null) {
        priced = true;
        Metrics.ModelTotals model = entry.getValue();
        costs += (model.tokensIn() * price.input() + model.tokensOut() * price.output()) / 1_000_000.0;
      }
    }
    return new Report(now.serverStatus(), now.llmStatus(), total.tokensPerSecond(), total.averageSeconds(), total.requests(),
        metrics.inFlight(), now.queueLength(), total.successPercent(), priced ? costs : null);
  }
}
