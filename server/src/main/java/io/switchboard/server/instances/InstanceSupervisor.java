package io.switchboard.server.instances;

import io.switchboard.server.ServerConfig;
import io.switchboard.server.http.ApiError;
import io.switchboard.server.http.ApiException;
import io.switchboard.server.instances.Instance.Status;
import io.switchboard.server.llm.LlmRouter;
import io.switchboard.server.llm.Worker;
import io.switchboard.worker.backend.UpstreamBackend;
import io.switchboard.worker.instances.BackendType;
import io.switchboard.worker.instances.ManagedProcess;
import io.vertx.core.Vertx;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An instance's life as a process: started on a port of its own, routed to once its health check
 * answers, stopped (its requests drained first), restarted after a crash when its config asks, and
 * evicted or stopped when the running slots and idle timeouts say so. Every method blocks: they run
 * on the manager's virtual threads, one operation on an instance at a time ({@link Instance#operation}).
 */
final class InstanceSupervisor {

  private static final Logger log = LoggerFactory.getLogger(InstanceSupervisor.class);
  private static final int FAILURE_LOG_LINES = 20;

  private final Vertx vertx;
  private final LlmRouter router;
  private final ServerConfig config;
  private final ServerConfig.InstanceSettings settings;
  private final Map<String, Instance> instances;
  private final ExecutorService threads;
  private final PortAllocator ports;
  private final HttpClient health = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
  /** Set when the server stops: from then on nothing starts. */
  private volatile boolean closing;

  InstanceSupervisor(Vertx vertx, LlmRouter router, ServerConfig config, Map<String, Instance> instances, ExecutorService threads) {
    this.vertx = vertx;
    this.router = router;
    this.config = config;
    this.settings = config.instances();
    this.instances = instances;
    this.threads = threads;
    this.ports = new PortAllocator(instances, settings);
  }

  void start(Instance instance, String reason) {
    instance.operation.lock();
    try {
      instance.stopRequested = false;
      startLocked(instance, reason);
    } finally {
      instance.operation.unlock();
    }
  }

  void stop(Instance instance, String reason) {
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
  void interruptStart(Instance instance) {
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

  void startLocked(Instance instance, String reason) {
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
    ManagedProcess process;
    try {
      port = ports.allocate(instance);
      String executable = cfg.commandOverride() != null ? cfg.commandOverride()
          : cfg.backendType() == BackendType.LLAMA_CPP ? config.llamaServer() : null;
      List<String> command = cfg.backendType().command(executable, cfg.backendOptions(), cfg.extraArgs(), port, instance.name);
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

  void stopLocked(Instance instance, String reason) {
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

  /** Stops the running instances that have served nothing for their {@code idle_timeout}. */
  void stopIdle() {
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

  /** From now on nothing starts. */
  void close() {
    closing = true;
  }

  /** Ends a process that a start past its check of {@link #close} may have left. */
  void killLeftover(Instance instance) {
    ManagedProcess process = instance.process;
    if (process != null && process.alive()) {
      stopProcess(instance, process);
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

  private static void sleep(Duration duration) {
    try {
      Thread.sleep(duration);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
