package io.switchboard.cli;

import io.switchboard.worker.WorkerAgent;
import io.switchboard.worker.WorkerConfig;
import io.switchboard.worker.WorkerRejectedException;
import io.switchboard.worker.backend.Backend;
import io.switchboard.worker.backend.UpstreamBackend;
import io.switchboard.worker.llamacpp.LlamaBackend;
import io.vertx.core.Vertx;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code switchboard worker}: serves the models of an OpenAI-compatible upstream to a server. */
@Command(
    name = "worker",
    mixinStandardHelpOptions = true,
    versionProvider = Main.Version.class,
    description = {
        "Dial in to a Switchboard server and serve the models of an OpenAI-compatible upstream",
        "(llama-server, vLLM, Ollama, LM Studio). Works behind NAT: only the worker opens a connection.",
        "SIGTERM drains: no new requests, those in flight finish, then the worker leaves.",
        "Settings come from flags, then environment variables (SERVER_URL, CLIENT_KEY, UPSTREAM, ...),",
        "then the YAML file given by --config, then defaults."})
final class WorkerCommand implements Callable<Integer> {

  /** The worker's settings as a user writes them; the loader fills it from file, env and flags. */
  record Settings(
      String serverUrl,
      String clientKey,
      String workerId,
      String workerName,
      String upstream,
      String upstreamApiKey,
      List<String> models,
      Integer maxConcurrency,
      Integer embeddingBatchSize,
      Duration requestTimeout,
      Duration modelPollInterval,
      Duration drainTimeout,
      Duration reconnectMax,
      List<String> gguf,
      List<String> ggufEmbedding,
      Integer ctxSize,
      Integer threads,
      Integer gpuLayers,
      Integer parallel) {

    Settings {
      if (serverUrl == null) {
        throw new IllegalArgumentException("--server (SERVER_URL) is required, e.g. --server http://gateway:8080");
      }
      gguf = gguf == null ? List.of() : List.copyOf(gguf);
      ggufEmbedding = ggufEmbedding == null ? List.of() : List.copyOf(ggufEmbedding);
      if ((upstream == null) == (gguf.isEmpty() && ggufEmbedding.isEmpty())) {
        throw new IllegalArgumentException("give the worker either --upstream (UPSTREAM), e.g. http://127.0.0.1:8081/v1, "
            + "or model files with --gguf (GGUF), not both");
      }
      ctxSize = Objects.requireNonNullElse(ctxSize, 4096);
      threads = Objects.requireNonNullElse(threads, Math.max(1, Runtime.getRuntime().availableProcessors()));
      gpuLayers = Objects.requireNonNullElse(gpuLayers, 0);
      parallel = Objects.requireNonNullElse(parallel, 2);
      models = models == null ? List.of() : models;
      maxConcurrency = Objects.requireNonNullElse(maxConcurrency, 4);
      embeddingBatchSize = Objects.requireNonNullElse(embeddingBatchSize, 0);
      requestTimeout = Objects.requireNonNullElse(requestTimeout, Duration.ofMinutes(5));
      modelPollInterval = Objects.requireNonNullElse(modelPollInterval, Duration.ofMinutes(1));
      drainTimeout = Objects.requireNonNullElse(drainTimeout, Duration.ofMinutes(1));
      reconnectMax = Objects.requireNonNullElse(reconnectMax, Duration.ofSeconds(30));
    }

    WorkerConfig toWorkerConfig() {
      return WorkerConfig.of(serverUrl, clientKey)
          .withIdentity(workerId, workerName)
          .withCapacity(maxConcurrency, embeddingBatchSize)
          .withTimings(Duration.ofSeconds(1), reconnectMax, modelPollInterval, drainTimeout);
    }
  }

  @Mixin
  AgentOptions agent = new AgentOptions();

  @Option(names = "--worker-id", description = "Stable id; default: assigned by the server (env WORKER_ID).")
  String workerId;

  @Option(names = "--worker-name", description = "Display name; default: the host name (env WORKER_NAME).")
  String workerName;

  @Option(names = "--upstream", description = "The upstream's OpenAI base URL, e.g. http://127.0.0.1:8081/v1 (env UPSTREAM).")
  String upstream;

  @Option(names = "--upstream-api-key", description = "API key the upstream wants (env UPSTREAM_API_KEY).")
  String upstreamApiKey;

  @Option(names = "--model", paramLabel = "NAME",
      description = "Model to advertise (repeatable); default: the upstream's /v1/models (env MODELS, comma-separated).")
  @Flags.Key("models")
  List<String> models;

  @Option(names = "--max-concurrency", description = "Requests the server may run here at once (default 4).")
  Integer maxConcurrency;

  @Option(names = "--embedding-batch-size", description = "Most embedding inputs per upstream request; 0 = no limit (default 0).")
  Integer embeddingBatchSize;

  @Option(names = "--request-timeout", description = "Longest silence from the upstream during a request (default 5m).")
  String requestTimeout;

  @Option(names = "--model-poll-interval", description = "How often to re-read the upstream's models (default 1m).")
  String modelPollInterval;

  @Option(names = "--drain-timeout", description = "Longest wait for requests in flight when draining (default 1m).")
  String drainTimeout;

  @Option(names = "--gguf", paramLabel = "FILE",
      description = "Serve this GGUF model file in-process with llama.cpp instead of an upstream (repeatable; env GGUF, comma-separated).")
  List<String> gguf;

  @Option(names = "--gguf-embedding", paramLabel = "FILE",
      description = "Serve this GGUF model file for embeddings (repeatable; env GGUF_EMBEDDING, comma-separated).")
  List<String> ggufEmbedding;

  @Option(names = "--ctx-size", description = "Context size of each GGUF model, all slots together (default 4096).")
  Integer ctxSize;

  @Option(names = "--threads", description = "CPU threads for GGUF generation (default: all cores).")
  Integer threads;

  @Option(names = "--gpu-layers", description = "Layers of each GGUF model to offload to the GPU (default 0).")
  Integer gpuLayers;

  @Option(names = "--parallel", description = "Requests each GGUF model serves at once; also the worker's max concurrency (default 2).")
  Integer parallel;

  @Override
  public Integer call() {
    Settings settings = load(System.getenv());
    Vertx vertx = EventLoops.start();
    Backend backend;
    WorkerConfig workerConfig = settings.toWorkerConfig();
    if (settings.gguf().isEmpty() && settings.ggufEmbedding().isEmpty()) {
      backend = new UpstreamBackend(vertx, settings.upstream(), settings.upstreamApiKey(), settings.models(), settings.requestTimeout());
    } else {
      LlamaBackend llama = new LlamaBackend(vertx, new LlamaBackend.Options(settings.ctxSize(), settings.threads(),
          settings.gpuLayers(), settings.parallel()));
      backend = llama;
      workerConfig = workerConfig.withCapacity(llama.slots(), settings.embeddingBatchSize());
    }
    WorkerAgent agent = new WorkerAgent(vertx, workerConfig, backend);
    if (backend instanceof LlamaBackend llama) {
      // Join the server first and load afterwards, so the dashboard shows the worker loading.
      agent.loading(true);
      llama.load(settings.gguf().stream().map(Path::of).toList(), settings.ggufEmbedding().stream().map(Path::of).toList())
          .onSuccess(loaded -> {
            if (loaded.isEmpty()) {
              System.err.println("switchboard worker: none of the GGUF files could be loaded; see the log above");
              System.exit(1);
            }
            agent.updateModels(loaded);
            agent.loading(false);
          });
    }
    CompletableFuture<Integer> exit = new CompletableFuture<>();
    agent.terminated().onComplete(ar -> exit.complete(
        ar.succeeded() ? 0 : ar.cause() instanceof WorkerRejectedException ? 3 : 1));
    long drainMillis = settings.drainTimeout().toMillis() + 5_000;
    Termination.onSignal("switchboard-worker-drain", () -> {
      try {
        agent.drain().otherwiseEmpty().await(drainMillis, TimeUnit.MILLISECONDS);
      } catch (TimeoutException e) {
        System.err.println("switchboard worker: drain did not finish in time; exiting");
        exit.complete(1);
      }
    });
    agent.start();
    return exit.join();
  }

  Settings load(Map<String, String> env) {
    return Flags.load(Settings.class, this, agent.config, env, Map.of());
  }
}
