package io.switchboard.server.metrics;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionTimer;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MultiGauge;
import io.micrometer.core.instrument.Tag;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.core.instrument.binder.system.UptimeMetrics;
import io.micrometer.core.instrument.distribution.pause.NoPauseDetector;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.Supplier;

/**
 * The server's counters, timers and gauges, in one Micrometer registry scraped as Prometheus text.
 * Requests report through {@link Request}; plugins add gauges for what they hold. It also keeps
 * the since-start totals that the JSON metrics of spec 002 are computed from.
 */
public final class Metrics {

  /** One row of a labelled gauge, as {@link #gaugeRows} reads them at each scrape. */
  public record Row(Map<String, String> labels, double value) {}

  private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
  /** Counted by every event loop: a LongAdder keeps them from sharing one cache line. */
  private final LongAdder inFlight = new LongAdder();
  private final List<Runnable> beforeScrape = new CopyOnWriteArrayList<>();
  private final Map<String, ModelTotals> totals = new ConcurrentHashMap<>();
  /** By endpoint, then by model: a lookup per request that builds no key. */
  private final Map<String, Map<String, Meters>> meters = new ConcurrentHashMap<>();

  /** Since-start totals of one model. */
  public static final class ModelTotals {
    final LongAdder requests = new LongAdder();
    final LongAdder succeeded = new LongAdder();
    final LongAdder nanos = new LongAdder();
    final LongAdder generationNanos = new LongAdder();
    final LongAdder tokensIn = new LongAdder();
    final LongAdder tokensOut = new LongAdder();

    public long requests() {
      return requests.sum();
    }

    public long succeeded() {
      return succeeded.sum();
    }

    public double seconds() {
      return nanos.sum() / 1e9;
    }

    /** Seconds spent in requests that reported completion tokens, to turn them into a rate. */
    public double generationSeconds() {
      return generationNanos.sum() / 1e9;
    }

    public long tokensIn() {
      return tokensIn.sum();
    }

    public long tokensOut() {
      return tokensOut.sum();
    }
  }

  public Metrics() {
    // Micrometer's default pause detector reads the clock and updates a shared estimate on every
    // timer record; the JVM's own GC metrics below report pauses anyway.
    registry.config().pauseDetector(new NoPauseDetector());
    new JvmMemoryMetrics().bindTo(registry);
    collections();
    new JvmThreadMetrics().bindTo(registry);
    new ProcessorMetrics().bindTo(registry);
    new UptimeMetrics().bindTo(registry);
    Gauge.builder("switchboard.requests.in.flight", inFlight, LongAdder::sum)
        .description("Requests being answered now").register(registry);
  }

  /**
   * Each collector's collections and the time they took, read at each scrape. Not Micrometer's
   * JvmGcMetrics: it listens to every collection's notification, and building and delivering that
   * notification took the JVM about a third of the collection's own CPU, right after each pause
   * (bench/README.md, item 35).
   */
  private void collections() {
    for (GarbageCollectorMXBean collector : ManagementFactory.getGarbageCollectorMXBeans()) {
      FunctionTimer.builder("jvm.gc.collection", collector, GarbageCollectorMXBean::getCollectionCount,
              GarbageCollectorMXBean::getCollectionTime, TimeUnit.MILLISECONDS)
          .tags("gc", collector.getName())
          .description("Collections by collector, and the time they took")
          .register(registry);
    }
  }

  /** The Prometheus text exposition of every meter. */
  public String scrape() {
    beforeScrape.forEach(Runnable::run);
    return registry.scrape();
  }

  /** A gauge of one value, read at each scrape. */
  public void gauge(String name, String description, Supplier<Number> value) {
    Gauge.builder(name, value).description(description).register(registry);
  }

  /** A labelled gauge whose rows (workers, instances, relays) are read again at each scrape. */
  public void gaugeRows(String name, String description, Supplier<List<Row>> rows) {
    MultiGauge gauge = MultiGauge.builder(name).description(description).register(registry);
    beforeScrape.add(() -> gauge.register(rows.get().stream()
        .map(row -> MultiGauge.Row.of(Tags.of(row.labels().entrySet().stream()
            .map(e -> Tag.of(e.getKey(), e.getValue())).toList()), row.value()))
        .toList(), true));
  }

  /** Counts one event, such as an MCP call, under its labels. */
  public void count(String name, String description, String... labels) {
    Counter.builder(name).description(description).tags(labels).register(registry).increment();
  }

  /** Begins the account of one OpenAI request. */
  public Request start(String model, String endpoint) {
    inFlight.increment();
    String name = model == null ? "" : model;
    Map<String, Meters> byModel = meters.computeIfAbsent(endpoint, e -> new ConcurrentHashMap<>());
    // Looked up first: the lambda below captures the endpoint, so it is built only for a new model.
    Meters found = byModel.get(name);
    return new Request(found != null ? found : byModel.computeIfAbsent(name, m -> new Meters(m, endpoint)));
  }

  public int inFlight() {
    return inFlight.intValue();
  }

  /** The since-start totals by model. */
  public Map<String, ModelTotals> totals() {
    return Map.copyOf(totals);
  }

  /** The since-start totals of every model together. */
  public Summary summary() {
    long requests = 0;
    long succeeded = 0;
    long tokensIn = 0;
    long tokensOut = 0;
    double seconds = 0;
    double generationSeconds = 0;
    for (ModelTotals model : totals.values()) {
      requests += model.requests();
      succeeded += model.succeeded();
      tokensIn += model.tokensIn();
      tokensOut += model.tokensOut();
      seconds += model.seconds();
      generationSeconds += model.generationSeconds();
    }
    return new Summary(requests, succeeded, tokensIn, tokensOut, seconds, generationSeconds);
  }

  /** Every model's totals together; the rates are null before there is anything to divide. */
  public record Summary(long requests, long succeeded, long tokensIn, long tokensOut, double seconds, double generationSeconds) {
    public Double tokensPerSecond() {
      return generationSeconds > 0 ? tokensOut / generationSeconds : null;
    }

    public Double averageSeconds() {
      return requests > 0 ? seconds / requests : null;
    }

    public Double successPercent() {
      return requests > 0 ? 100.0 * succeeded / requests : null;
    }
  }

  /**
   * The meters of one model on one endpoint, made once: building and looking a meter up for every
   * request would cost more than the request's own routing.
   */
  private final class Meters {
    final String model;
    final String endpoint;
    final ModelTotals totals;
    final Timer duration;
    final Timer firstToken;
    final Counter tokensIn;
    final Counter tokensOut;
    /** The status nearly every request ends with, kept apart from the map of the others. */
    final Counter ok;
    final Map<Integer, Counter> byStatus = new ConcurrentHashMap<>();

    Meters(String model, String endpoint) {
      this.model = model;
      this.endpoint = endpoint;
      this.totals = Metrics.this.totals.computeIfAbsent(model, m -> new ModelTotals());
      this.duration = Timer.builder("switchboard.request.duration").description("Time from request to the end of its answer")
          .tags("model", model, "endpoint", endpoint).publishPercentileHistogram()
          .minimumExpectedValue(Duration.ofMillis(1)).maximumExpectedValue(Duration.ofMinutes(10)).register(registry);
      this.firstToken = Timer.builder("switchboard.time.to.first.token")
          .description("Time until the first byte of the answer: the first token of a stream")
          .tags("model", model, "endpoint", endpoint).publishPercentileHistogram()
          .minimumExpectedValue(Duration.ofMillis(1)).maximumExpectedValue(Duration.ofMinutes(2)).register(registry);
      this.tokensIn = tokens(model, "in");
      this.tokensOut = tokens(model, "out");
      this.ok = counter(200);
    }

    private Counter tokens(String model, String direction) {
      return Counter.builder("switchboard.tokens").description("Tokens by model and direction, from the answers' usage")
          .tags("model", model, "direction", direction).register(registry);
    }

    Counter status(int status) {
      return status == 200 ? ok : byStatus.computeIfAbsent(status, this::counter);
    }

    private Counter counter(int status) {
      return Counter.builder("switchboard.requests")
          .description("OpenAI requests by model, endpoint and status")
          .tags("model", model, "endpoint", endpoint, "status", Integer.toString(status), "outcome", status < 400 ? "success" : "error")
          .register(registry);
    }
  }

  /** One request's account: its first byte, its tokens, and how it ended. Ends once. */
  public final class Request {
    private final Meters meters;
    private final long started = System.nanoTime();
    private boolean firstByteSeen;
    private long tokensIn = -1;
    private long tokensOut = -1;
    private boolean ended;

    private Request(Meters meters) {
      this.meters = meters;
    }

    /** The first byte of the answer reached the client. */
    public void firstByte() {
      if (!firstByteSeen) {
        firstByteSeen = true;
        meters.firstToken.record(System.nanoTime() - started, TimeUnit.NANOSECONDS);
      }
    }

    /** Token counts from the answer's {@code usage}. */
    public void tokens(long in, long out) {
      tokensIn = in;
      tokensOut = out;
    }

    /** The request ended with this HTTP status (for a stream cut by an error: the error's). */
    public void end(int status) {
      if (ended) {
        return;
      }
      ended = true;
      inFlight.decrement();
      long nanos = System.nanoTime() - started;
      meters.status(status).increment();
      meters.duration.record(nanos, TimeUnit.NANOSECONDS);
      ModelTotals model = meters.totals;
      model.requests.increment();
      model.nanos.add(nanos);
      if (status < 400) {
        model.succeeded.increment();
      }
      if (tokensIn >= 0) {
        model.tokensIn.add(tokensIn);
        meters.tokensIn.increment(tokensIn);
      }
      if (tokensOut >= 0) {
        model.tokensOut.add(tokensOut);
        model.generationNanos.add(nanos);
        meters.tokensOut.increment(tokensOut);
      }
    }
  }
}
