package io.switchboard.server.instances;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.switchboard.server.ServerConfig;
import io.switchboard.server.http.ApiError;
import io.switchboard.server.http.ApiException;
import io.switchboard.vertx.CallerContext;
import io.switchboard.server.instances.Instance.Status;
import io.switchboard.server.llm.LlmRouter;
import io.switchboard.server.llm.ManagedModels;
import io.switchboard.server.llm.Worker;
import io.switchboard.worker.backend.UpstreamBackend;
import io.switchboard.worker.instances.BackendType;
import io.switchboard.worker.instances.InstanceLog;
import io.switchboard.worker.instances.ManagedProcess;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.jdbi.v3.core.Jdbi;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs the managed instances of this node: model servers started as child processes, each on a
 * port of its own, routed to once their health check answers. It keeps the limits (instances,
 * running instances, LRU eviction), stops idle ones, restarts crashed ones when asked to, and stops
 * them all when the server stops.
 *
 * <p>Operations block (processes, health checks, the database), so they run on virtual threads and
 * hand their result back to the caller's Vert.x context as a future.
 */
public final class InstanceManager implements ManagedModels {

  private static final Logger log = LoggerFactory.getLogger(InstanceManager.class);
  private static final Pattern NAME = Pattern.compile("[a-zA-Z0-9._-]{1,50}");
  private static final int FAILURE_LOG_LINES = 20;

  private final Vertx vertx;
  private final LlmRouter router;
  private final InstanceStore store;
  private final ServerConfig config;
  private final ServerConfig.InstanceSettings settings;
  private final Path home;
  private final Map<String, Instance> instances = new ConcurrentHashMap<>();
  private final ExecutorService threads = Executors.newThreadPerTaskExecutor(Thread.ofVirtual().name("instances-", 0).factory());
  private final HttpClient health = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
  private long idleTimer = -1;
  /** Set when the server stops: from then on nothing starts. */
  private volatile boolean closing;

  public InstanceManager(Vertx vertx, LlmRouter router, Jdbi jdbi, ObjectMapper json, ServerConfig config) {
    this.vertx = vertx;
    this.router = router;
    this.store = new InstanceStore(jdbi, json);
    this.config = config;
    this.settings = config.instances();
    this.home = config.dataDir().resolve("instances");
  }

  /** Loads the stored instances, starts those marked {@code auto_start}, and begins the idle checks. */
  public Future<Void> load() {
    return this.<Void>blocking(() -> {
      for (InstanceStore.Row row : store.all()) {
        instances.put(row.name(), newInstance(row.name(), row.created(), row.config()));
      }
      log.info("{} instance(s) loaded", instances.size());
      return null;
    }).onSuccess(v -> {
      instances.values().stream().filter(i -> i.config.autoStart()).forEach(i -> threads.execute(() -> {
        try {
          start(i, "auto_start");
        } catch (ApiException e) {
          log.warn("instance {} did not auto-start: {}", i.name, e.getMessage());
        }
      }));
      idleTimer = vertx.setPeriodic(settings.checkInterval().toMillis(), t -> threads.execute(this::stopIdle));
    });
  }

  // ---- the API's operations --------------------------------------------------------------------

  public Future<List<ObjectNode>> views() {
    return Future.succeededFuture(instances.values().stream()
        .sorted(Comparator.comparingLong((Instance i) -> i.created).thenComparing(i -> i.name))
        .map(this::view).toList());
  }

  public Future<ObjectNode> get(String name) {
    return Future.succeededFuture(view(find(name)));
  }

  /** Creates an instance and starts it; a start that fails leaves it created and {@code failed}. */
  public Future<ObjectNode> create(String name, JsonNode body) {
    if (!NAME.matcher(name).matches()) {
      return Future.failedFuture(new ApiException(ApiError.badRequest(
          "instance name must be 1-50 letters, digits, '.', '_' or '-'; got '" + name + "'")));
    }
    InstanceConfig parsed;
    try {
      parsed = InstanceConfig.parse(body);
    } catch (IllegalArgumentException e) {
      return Future.failedFuture(new ApiException(ApiError.badRequest(e.getMessage())));
    }
    return blocking(() -> {
      Instance instance;
      synchronized (instances) {
        if (instances.containsKey(name)) {
          throw new ApiException(ApiError.conflict("instance_exists", "instance '" + name + "' already exists"));
        }
        if (settings.maxInstances() >= 0 && instances.size() >= settings.maxInstances()) {
          throw new ApiException(ApiError.conflict("max_instances_reached",
              "there are already " + instances.size() + " instances, the most this server allows (instances.max_instances)"));
        }
        instance = newInstance(name, System.currentTimeMillis() / 1000, parsed);
        store.insert(new InstanceStore.Row(name, instance.created, parsed));
        instances.put(name, instance);
      }
      log.info("instance {} created ({})", name, parsed.backendType().id());
      try {
        start(instance, "created");
      } catch (ApiException e) {
        instance.lastError = e.getMessage();
      }
      return view(instance);
    });
  }

  /** Changes an instance's config (the fields given replace the old ones) and restarts it if it runs. */
  public Future<ObjectNode> update(String name, JsonNode body) {
    Instance instance;
    try {
      instance = find(name);
    } catch (ApiException e) {
      return Future.failedFuture(e);
    }
    if (body == null || !body.isObject()) {
      return Future.failedFuture(new ApiException(ApiError.badRequest("the body must be a JSON object of instance options")));
    }
    return blocking(() -> {
      instance.operation.lock();
      try {
        ObjectNode merged = instance.config.toJson();
        merged.setAll((ObjectNode) body);
        InstanceConfig next;
        try {
          next = InstanceConfig.parse(merged);
        } catch (IllegalArgumentException e) {
          throw new ApiException(ApiError.badRequest(e.getMessage()));
        }
        store.update(name, next);
        boolean wasRunning = instance.holdsSlot();
        instance.config = next;
        log.info("instance {} updated{}", name, wasRunning ? "; restarting it" : "");
        if (wasRunning) {
          stopLocked(instance, "updated");
          startLocked(instance, "updated");
        }
      } finally {
        instance.operation.unlock();
      }
      return view(instance);
    });
  }

  /** Stops an instance and forgets it, with its logs. */
  public Future<Void> delete(String name) {
    Instance instance;
    try {
      instance = find(name);
    } catch (ApiException e) {
      return Future.failedFuture(e);
    }
    return blocking(() -> {
      instance.stopRequested = true;
      interruptStart(instance);
      instance.operation.lock();
      try {
        stopLocked(instance, "deleted");
        store.delete(name);
        instances.remove(name, instance);
        instance.log.delete();
      } finally {
        instance.operation.unlock();
      }
      log.info("instance {} deleted", name);
      return null;
    });
  }

  public Future<ObjectNode> start(String name) {
    return withInstance(name, instance -> {
      instance.restarts = 0;
      start(instance, "start requested");
      return view(instance);
    });
  }

  public Future<ObjectNode> stop(String name) {
    return withInstance(name, instance -> {
      stop(instance, "stop requested");
      return view(instance);
    });
  }

  public Future<ObjectNode> restart(String name) {
    return withInstance(name, instance -> {
      stop(instance, "restart requested");
      instance.restarts = 0;
      start(instance, "restart requested");
      return view(instance);
    });
  }

  /** The last {@code lines} lines of the instance's log (all when negative). */
  public Future<String> logs(String name, int lines) {
    return withInstance(name, instance -> {
      List<String> tail = instance.log.tail(lines);
      return tail.isEmpty() ? "" : String.join("\n", tail) + "\n";
    });
  }

  /** Where a running instance listens, for the instance proxy; fails with 503 when it does not run. */
  public int runningPort(String name) {
    Instance instance = find(name);
    if (instance.status != Status.RUNNING) {
      throw new ApiException(ApiError.unavailable("instance_not_running",
          "instance '" + name + "' is " + instance.status.id() + ", not running"));
    }
    instance.lastUsedMillis = System.currentTimeMillis();
    return instance.port;
  }

  // ---- routing ---------------------------------------------------------------------------------

  @Override
  public Future<Void> prepare(String model) {
    Instance instance = model == null ? null : instances.get(model);
    if (instance == null) {
      return Future.succeededFuture();
    }
    instance.lastUsedMillis = System.currentTimeMillis();
    if (instance.status == Status.RUNNING) {
      return Future.succeededFuture();
    }
    if (!instance.config.onDemandStart()) {
      return Future.failedFuture(new ApiException(ApiError.unavailable("instance_not_running",
          "instance '" + model + "' is " + instance.status.id() + " and on_demand_start is off; start it with POST /api/v1/instances/"
              + model + "/start")));
    }
    // A stopping instance is started again once its stop is over: start waits for the stop's lock.
    return blocking(() -> {
      try {
        start(instance, "on demand");
      } catch (ApiException e) {
        if (e.error().status() == 409) {
          throw e;
        }
        throw new ApiException(ApiError.unavailable("instance_start_failed", e.getMessage()));
      }
      return null;
    });
  }

  @Override
  public List<Entry> list() {
    return instances.values().stream()
        .sorted(Comparator.comparing(i -> i.name))
        .map(i -> new Entry(i.name, i.created, i.status.id()))
        .toList();
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  private void start(Instance instance, String reason) {
    instance.operation.lock();
    try {
      instance.stopRequested = false;
      startLocked(instance, reason);
    } finally {
      instance.operation.unlock();
    }
  }

  private void stop(Instance instance, String reason) {
    instance.stopRequested = true;
    interruptStart(instance);
    instance.operation.lock();
    try {
      stopLocked(instance, reason);
    } finally {
      instance.operation.unlock();
    }
  }

  /** A stop during a start ends the starting process at once, so the start gives up instead of waiting for health. */
  private void interruptStart(Instance instance) {
    ManagedProcess starting = instance.process;
    if (instance.status == Status.STARTING && starting != null) {
      threads.execute(() -> {
        try {
          starting.stop(settings.stopTimeout());
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      });
    }
  }

  private void startLocked(Instance instance, String reason) {
    if (instance.status == Status.RUNNING) {
      return;
    }
    if (closing) {
      throw new ApiException(ApiError.unavailable("draining", "the server is stopping; instance '" + instance.name + "' stays stopped"));
    }
    if (instance.stopRequested) {
      throw new ApiException(ApiError.conflict("instance_stopping", "instance '" + instance.name + "' was stopped while starting"));
    }
    takeSlot(instance);
    InstanceConfig cfg = instance.config;
    int port;
    List<String> command;
    ManagedProcess process;
    try {
      port = allocatePort(instance);
      String executable = cfg.commandOverride() != null ? cfg.commandOverride()
          : cfg.backendType() == BackendType.LLAMA_CPP ? config.llamaServer() : null;
      command = cfg.backendType().command(executable, cfg.backendOptions(), cfg.extraArgs(), port, instance.name);
      instance.log.note("starting (" + reason + ") on port " + port + ": " + String.join(" ", command));
      process = ManagedProcess.start(command, cfg.environment(), instance.log.directory(), instance.log);
    } catch (IOException e) {
      boolean configuredProgram = cfg.commandOverride() == null && cfg.backendType() == BackendType.LLAMA_CPP;
      throw fail(instance, configuredProgram ? InstanceRoutes.notRunnable(config.llamaServer()) : e.getMessage());
    } catch (ApiException e) {
      throw fail(instance, e.getMessage());
    }
    instance.process = process;
    instance.port = port;
    instance.lastError = null;
    log.info("instance {} starting ({}), pid {}, port {}", instance.name, reason, process.pid(), port);
    process.exit().thenAccept(code -> threads.execute(() -> exited(instance, process, code)));
    String failure = awaitHealthy(instance, process, port);
    if (failure != null) {
      stopProcess(instance, process);
      if (instance.stopRequested) {
        instance.status = Status.STOPPED;
        instance.process = null;
        throw new ApiException(ApiError.conflict("instance_stopping", "instance '" + instance.name + "' was stopped while starting"));
      }
      throw fail(instance, failure + lastLines(instance));
    }
    UpstreamBackend backend = new UpstreamBackend(vertx, "http://127.0.0.1:" + port + "/v1", null, List.of(instance.name),
        config.requestTimeout());
    Worker worker = new Worker("instance:" + instance.name, instance.name, true, backend, List.of(instance.name),
        cfg.maxConcurrency(), 0);
    instance.backend = backend;
    instance.worker = worker;
    instance.lastUsedMillis = System.currentTimeMillis();
    instance.status = Status.RUNNING;
    router.register(worker);
    instance.log.note("running");
    log.info("instance {} running on port {}", instance.name, port);
  }

  /** Reserves a running slot for the instance, evicting the least recently used idle instance when allowed. */
  private void takeSlot(Instance instance) {
    Instance victim;
    synchronized (instances) {
      long holding = instances.values().stream().filter(i -> i != instance && i.holdsSlot()).count();
      victim = null;
      if (settings.maxRunning() >= 0 && holding >= settings.maxRunning()) {
        if (settings.lruEviction()) {
          victim = instances.values().stream()
              .filter(i -> i != instance && i.status == Status.RUNNING && i.worker != null && router.inFlight(i.worker) == 0)
              .min(Comparator.comparingLong(i -> i.lastUsedMillis))
              .orElse(null);
        }
        if (victim == null) {
          throw new ApiException(ApiError.conflict("max_running_instances_reached", "instance '" + instance.name
              + "' cannot start: " + holding + " instance(s) run, the most this server allows (instances.max_running)"
              + (settings.lruEviction() ? ", and none of them is idle" : "")));
        }
        victim.status = Status.STOPPING;
      }
      instance.status = Status.STARTING;
    }
    if (victim != null) {
      log.info("instance {} evicted (least recently used) to make room for {}", victim.name, instance.name);
      evict(victim, instance);
    }
  }

  private void evict(Instance victim, Instance forWhom) {
    victim.stopRequested = true;
    try {
      if (!victim.operation.tryLock(settings.stopTimeout().toMillis() * 2 + 5_000, TimeUnit.MILLISECONDS)) {
        throw new ApiException(ApiError.conflict("max_running_instances_reached",
            "instance '" + forWhom.name + "' cannot start: evicting '" + victim.name + "' did not finish in time"));
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new ApiException(ApiError.internal("interrupted"));
    }
    try {
      stopLocked(victim, "evicted for " + forWhom.name);
    } finally {
      victim.operation.unlock();
    }
  }

  /** Polls the health endpoint; null once healthy, else why not. */
  private String awaitHealthy(Instance instance, ManagedProcess process, int port) {
    URI uri = URI.create("http://127.0.0.1:" + port + instance.config.backendType().healthPath());
    HttpRequest request = HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(2)).GET().build();
    long deadline = System.nanoTime() + settings.startTimeout().toNanos();
    while (System.nanoTime() < deadline) {
      if (instance.stopRequested) {
        return "stopped while starting";
      }
      if (!process.alive()) {
        return "exited with status " + process.exit().join() + " before it became healthy";
      }
      try {
        if (health.send(request, HttpResponse.BodyHandlers.discarding()).statusCode() == 200) {
          return null;
        }
      } catch (IOException e) {
        // Not listening yet.
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return "interrupted";
      }
      sleep(Duration.ofMillis(200));
    }
    return "did not answer " + uri.getPath() + " with 200 within " + settings.startTimeout().toSeconds() + " s";
  }

  private void stopLocked(Instance instance, String reason) {
    Status was = instance.status;
    if (was == Status.STOPPED || was == Status.FAILED) {
      if (was == Status.FAILED && instance.process == null) {
        instance.status = Status.STOPPED;
      }
      if (instance.process == null) {
        return;
      }
    }
    instance.status = Status.STOPPING;
    Worker worker = instance.worker;
    if (worker != null) {
      router.update(worker, null, null, true);
      long deadline = System.nanoTime() + settings.stopTimeout().toNanos();
      while (router.inFlight(worker) > 0 && System.nanoTime() < deadline) {
        sleep(Duration.ofMillis(100));
      }
      router.remove(worker);
      instance.worker = null;
    }
    UpstreamBackend backend = instance.backend;
    if (backend != null) {
      backend.close();
      instance.backend = null;
    }
    ManagedProcess process = instance.process;
    if (process != null) {
      instance.log.note("stopping (" + reason + ")");
      stopProcess(instance, process);
    }
    instance.process = null;
    instance.port = 0;
    instance.status = Status.STOPPED;
    log.info("instance {} stopped ({})", instance.name, reason);
  }

  private void stopProcess(Instance instance, ManagedProcess process) {
    try {
      if (!process.stop(settings.stopTimeout())) {
        instance.log.note("did not stop within " + settings.stopTimeout().toSeconds() + " s of SIGTERM; killed");
        log.warn("instance {} did not stop within {} s of SIGTERM; killed", instance.name, settings.stopTimeout().toSeconds());
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** A process ended. When nobody asked for it, that is a crash: fail, and restart if configured. */
  private void exited(Instance instance, ManagedProcess process, int code) {
    if (instance.process != process || instance.status != Status.RUNNING) {
      return; // a stop, or a start that is watching the process itself
    }
    try {
      process.killLeftovers();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    instance.operation.lock();
    try {
      if (instance.process != process || instance.status != Status.RUNNING) {
        return;
      }
      InstanceConfig cfg = instance.config;
      boolean restart = cfg.autoRestart() && instance.restarts < cfg.maxRestarts();
      // What a reader without the lock sees changes first: never "running" without a process, nor
      // "failed" without its reason.
      instance.lastError = "exited unexpectedly with status " + code;
      instance.status = restart ? Status.RESTARTING : Status.FAILED;
      Worker worker = instance.worker;
      if (worker != null) {
        router.remove(worker);
        instance.worker = null;
      }
      if (instance.backend != null) {
        instance.backend.close();
        instance.backend = null;
      }
      instance.process = null;
      instance.port = 0;
      instance.log.note(instance.lastError);
      if (restart) {
        instance.restarts++;
        Duration delay = cfg.restartDelay().multipliedBy(1L << Math.min(10, instance.restarts - 1));
        log.warn("instance {} {}; restart {} of {} in {} ms", instance.name, instance.lastError, instance.restarts,
            cfg.maxRestarts(), delay.toMillis());
        threads.execute(() -> restartLater(instance, delay));
      } else {
        log.warn("instance {} {}; it is now failed{}", instance.name, instance.lastError,
            cfg.autoRestart() ? " (" + cfg.maxRestarts() + " restarts used up)" : "");
      }
    } finally {
      instance.operation.unlock();
    }
  }

  private void restartLater(Instance instance, Duration delay) {
    sleep(delay);
    instance.operation.lock();
    try {
      if (instance.status != Status.RESTARTING || instance.stopRequested) {
        return;
      }
      instance.status = Status.STOPPED;
      startLocked(instance, "restart " + instance.restarts + " after a crash");
    } catch (ApiException e) {
      log.warn("instance {} did not restart: {}", instance.name, e.getMessage());
    } finally {
      instance.operation.unlock();
    }
  }

  private void stopIdle() {
    long now = System.currentTimeMillis();
    for (Instance instance : instances.values()) {
      Duration idle = instance.config.idleTimeout();
      Worker worker = instance.worker;
      if (idle.isZero() || instance.status != Status.RUNNING || worker == null) {
        continue;
      }
      if (router.inFlight(worker) > 0) {
        instance.lastUsedMillis = now;
      } else if (now - instance.lastUsedMillis >= idle.toMillis()) {
        log.info("instance {} idle for {} s; stopping it", instance.name, (now - instance.lastUsedMillis) / 1000);
        stop(instance, "idle for " + idle.toSeconds() + " s");
      }
    }
  }

  /** Stops every instance (the server is stopping). Blocks until they have ended. */
  public void shutdown() {
    closing = true;
    if (idleTimer >= 0) {
      vertx.cancelTimer(idleTimer);
    }
    List<Future<?>> stops = new ArrayList<>();
    for (Instance instance : instances.values()) {
      if (instance.process != null || instance.holdsSlot()) {
        Promise<Void> stopped = Promise.promise();
        threads.execute(() -> {
          stop(instance, "server stopping");
          stopped.complete();
        });
        stops.add(stopped.future());
      }
    }
    try {
      Future.all(stops).toCompletionStage().toCompletableFuture().get(settings.stopTimeout().toSeconds() * 2 + 10, TimeUnit.SECONDS);
    } catch (Exception e) {
      log.warn("not every instance stopped in time: {}", e.getMessage());
    }
    threads.shutdownNow();
    // A start that was past its check of 'closing' when the stops began may have left a process.
    for (Instance instance : instances.values()) {
      ManagedProcess process = instance.process;
      if (process != null && process.alive()) {
        stopProcess(instance, process);
      }
    }
  }

  // ---- helpers ---------------------------------------------------------------------------------

  private Instance newInstance(String name, long created, InstanceConfig cfg) {
    return new Instance(name, created, cfg, new InstanceLog(home.resolve(name).resolve("instance.log"), settings.logMaxBytes(), 3));
  }

  private Instance find(String name) {
    Instance instance = instances.get(name);
    if (instance == null) {
      throw new ApiException(ApiError.notFound("instance '" + name + "' does not exist"));
    }
    return instance;
  }

  private int allocatePort(Instance instance) {
    Integer fixed = instance.config.port();
    if (fixed != null) {
      if (!portFree(fixed)) {
        throw new ApiException(ApiError.conflict("port_in_use", "port " + fixed + " of instance '" + instance.name + "' is in use"));
      }
      return fixed;
    }
    synchronized (instances) {
      for (int port = settings.firstPort(); port <= settings.lastPort(); port++) {
        int candidate = port;
        boolean taken = instances.values().stream().anyMatch(i -> i != instance && i.port == candidate);
        if (!taken && portFree(port)) {
          instance.port = port;
          return port;
        }
      }
    }
    throw new ApiException(ApiError.conflict("no_free_port", "no free port in instances.port_range " + settings.portRange()));
  }

  private static boolean portFree(int port) {
    try (ServerSocket socket = new ServerSocket(port, 1, InetAddress.getLoopbackAddress())) {
      socket.setReuseAddress(true);
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  private ApiException fail(Instance instance, String why) {
    instance.lastError = why; // before the status, as in exited(): never "failed" without its reason
    instance.status = Status.FAILED;
    instance.process = null;
    instance.port = 0;
    instance.log.note("failed to start: " + why);
    log.warn("instance {} failed to start: {}", instance.name, why);
    return new ApiException(ApiError.internal("instance '" + instance.name + "' failed to start: " + why));
  }

  private String lastLines(Instance instance) {
    try {
      List<String> tail = instance.log.tail(FAILURE_LOG_LINES).stream().filter(l -> !l.startsWith("[switchboard ")).toList();
      return tail.isEmpty() ? "" : "; last output:\n" + String.join("\n", tail);
    } catch (IOException e) {
      return "";
    }
  }

  private ObjectNode view(Instance instance) {
    ObjectNode node = JsonNodeFactory.instance.objectNode()
        .put("name", instance.name)
        .put("status", instance.status.id())
        .put("created", instance.created);
    ManagedProcess process = instance.process;
    if (instance.port > 0 && instance.status != Status.STOPPED) {
      node.put("port", instance.port);
    }
    if (process != null) {
      node.put("pid", process.pid());
    }
    node.put("restarts", instance.restarts);
    if (instance.lastError != null) {
      node.put("last_error", instance.lastError);
    }
    node.set("options", instance.config.toJson());
    return node;
  }

  private interface Operation<T> {
    T run(Instance instance) throws Exception;
  }

  private <T> Future<T> withInstance(String name, Operation<T> operation) {
    Instance instance;
    try {
      instance = find(name);
    } catch (ApiException e) {
      return Future.failedFuture(e);
    }
    return blocking(() -> operation.run(instance));
  }

  /** Runs blocking work on a virtual thread and completes the future on the caller's context. */
  private <T> Future<T> blocking(Callable<T> work) {
    Promise<T> promise = CallerContext.promise(vertx);
    threads.execute(() -> {
      try {
        promise.complete(work.call());
      } catch (Throwable e) {
        promise.fail(e);
      }
    });
    return promise.future();
  }

  private static void sleep(Duration duration) {
    try {
      Thread.sleep(duration);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
