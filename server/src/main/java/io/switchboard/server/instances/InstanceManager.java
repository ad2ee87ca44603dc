package io.switchboard.server.instances;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.switchboard.server.ServerConfig;
import io.switchboard.server.http.ApiError;
import io.switchboard.server.http.ApiException;
import io.switchboard.server.instances.Instance.Status;
import io.switchboard.server.llm.LlmRouter;
import io.switchboard.server.llm.ManagedModels;
import io.switchboard.server.metrics.Metrics;
import io.switchboard.server.store.Database;
import io.switchboard.vertx.Blocking;
import io.switchboard.worker.instances.InstanceLog;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import java.nio.file.Path;
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
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The managed instances of this node, as the API and the router see them: created, changed and
 * deleted (and kept in the database), started and stopped on request or on demand, listed. Their
 * life as processes is the {@link InstanceSupervisor}'s.
 *
 * <p>Operations block (processes, health checks, the database), so they run on this manager's
 * virtual threads and hand their result back to the caller's Vert.x context as a future.
 */
public final class InstanceManager implements ManagedModels {

  private static final Logger log = LoggerFactory.getLogger(InstanceManager.class);
  private static final Pattern NAME = Pattern.compile("[a-zA-Z0-9._-]{1,50}");

  private final Vertx vertx;
  private final InstanceStore store;
  private final ServerConfig.InstanceSettings settings;
  private final Path home;
  private final Map<String, Instance> instances = new ConcurrentHashMap<>();
  private final ExecutorService threads = Executors.newThreadPerTaskExecutor(Thread.ofVirtual().name("instances-", 0).factory());
  private final InstanceSupervisor supervisor;
  private long idleTimer = -1;

  public InstanceManager(Vertx vertx, LlmRouter router, Database database, ServerConfig config, Metrics metrics) {
    this.vertx = vertx;
    this.store = new InstanceStore(database);
    this.settings = config.instances();
    this.home = config.dataDir().resolve("instances");
    this.supervisor = new InstanceSupervisor(vertx, router, config, instances, threads);
    metrics.gaugeRows("switchboard.instance.status", "1 for each instance in its current status",
        () -> list().stream().map(i -> new Metrics.Row(Map.of("instance", i.id(), "status", i.status()), 1)).toList());
  }

  /** Loads the stored instances, starts those marked {@code auto_start}, and begins the idle checks. */
  public Future<Void> load() {
    return store.all().map(rows -> {
      rows.forEach(row -> instances.put(row.name(), newInstance(row.name(), row.created(), row.config())));
      log.info("{} instance(s) loaded", instances.size());
      instances.values().stream().filter(i -> i.config.autoStart()).forEach(i -> threads.execute(() -> {
        try {
          supervisor.start(i, "auto_start");
        } catch (ApiException e) {
          log.warn("instance {} did not auto-start: {}", i.name, e.getMessage());
        }
      }));
      idleTimer = vertx.setPeriodic(settings.checkInterval().toMillis(), t -> threads.execute(supervisor::stopIdle));
      return null;
    });
  }

  public Future<List<InstanceView>> views() {
    return Future.succeededFuture(instances.values().stream()
        .sorted(Comparator.comparingLong((Instance i) -> i.created).thenComparing(i -> i.name))
        .map(InstanceView::of).toList());
  }

  public Future<InstanceView> get(String name) {
    try {
      return Future.succeededFuture(InstanceView.of(find(name)));
    } catch (ApiException e) {
      return Future.failedFuture(e);
    }
  }

  /** Creates an instance and starts it; a start that fails leaves it created and {@code failed}. */
  public Future<InstanceView> create(String name, JsonNode body) {
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
        Blocking.await(store.insert(new InstanceStore.Row(name, instance.created, parsed)));
        instances.put(name, instance);
      }
      log.info("instance {} created ({})", name, parsed.backendType().id());
      try {
        supervisor.start(instance, "created");
      } catch (ApiException e) {
        instance.lastError = e.getMessage();
      }
      return InstanceView.of(instance);
    });
  }

  /** Changes an instance's config (the fields given replace the old ones) and restarts it if it runs. */
  public Future<InstanceView> update(String name, JsonNode body) {
    if (body == null || !body.isObject()) {
      return withInstance(name, instance -> {
        throw new ApiException(ApiError.badRequest("the body must be a JSON object of instance options"));
      });
    }
    return withInstance(name, instance -> {
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
        Blocking.await(store.update(name, next));
        boolean wasRunning = instance.holdsSlot();
        instance.config = next;
        log.info("instance {} updated{}", name, wasRunning ? "; restarting it" : "");
        if (wasRunning) {
          supervisor.stopLocked(instance, "updated");
          supervisor.startLocked(instance, "updated");
        }
      } finally {
        instance.operation.unlock();
      }
      return InstanceView.of(instance);
    });
  }

  /** Stops an instance and forgets it, with its logs. */
  public Future<Void> delete(String name) {
    return withInstance(name, instance -> {
      instance.stopRequested = true;
      supervisor.interruptStart(instance);
      instance.operation.lock();
      try {
        supervisor.stopLocked(instance, "deleted");
        Blocking.await(store.delete(name));
        instances.remove(name, instance);
        instance.log.delete();
      } finally {
        instance.operation.unlock();
      }
      log.info("instance {} deleted", name);
      return null;
    });
  }

  public Future<InstanceView> start(String name) {
    return withInstance(name, instance -> {
      instance.restarts = 0;
      supervisor.start(instance, "start requested");
      return InstanceView.of(instance);
    });
  }

  public Future<InstanceView> stop(String name) {
    return withInstance(name, instance -> {
      supervisor.stop(instance, "stop requested");
      return InstanceView.of(instance);
    });
  }

  public Future<InstanceView> restart(String name) {
    return withInstance(name, instance -> {
      supervisor.stop(instance, "restart requested");
      instance.restarts = 0;
      supervisor.start(instance, "restart requested");
      return InstanceView.of(instance);
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
        supervisor.start(instance, "on demand");
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

  /** Stops every instance (the server is stopping). Blocks until they have ended. */
  public void shutdown() {
    supervisor.close();
    if (idleTimer >= 0) {
      vertx.cancelTimer(idleTimer);
    }
    List<Future<?>> stops = new ArrayList<>();
    for (Instance instance : instances.values()) {
      if (instance.process != null || instance.holdsSlot()) {
        Promise<Void> stopped = Promise.promise();
        threads.execute(() -> {
          supervisor.stop(instance, "server stopping");
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
    instances.values().forEach(supervisor::killLeftover);
  }

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

  private <T> Future<T> blocking(Callable<T> work) {
    return Blocking.call(vertx, threads, work);
  }
}
