package io.switchboard.server.llm;

import io.switchboard.server.ServerConfig;
import io.switchboard.worker.backend.UpstreamBackend;
import io.switchboard.worker.llamacpp.LlamaBackend;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The server's own workers: one per configured upstream, whose model lists it keeps fresh, and one
 * for the GGUF files it serves in-process. They take the same routing as dialed-in workers, without
 * a WebSocket hop.
 */
final class LocalWorkers {

  private static final Logger log = LoggerFactory.getLogger(LocalWorkers.class);

  private final Vertx vertx;
  private final ServerConfig config;
  private final LlmRouter router;
  private final List<UpstreamBackend> upstreams = new ArrayList<>();
  private LlamaBackend localModels;
  private long pollTimer = -1;

  LocalWorkers(Vertx vertx, ServerConfig config, LlmRouter router) {
    this.vertx = vertx;
    this.config = config;
    this.router = router;
  }

  /** Registers the workers; completes once each upstream has answered (or not) and the GGUF files are loaded. */
  Future<Void> start() {
    List<Future<?>> joined = new ArrayList<>();
    List<Runnable> refreshers = new ArrayList<>();
    for (ServerConfig.Upstream upstream : config.upstreams()) {
      UpstreamBackend backend = new UpstreamBackend(vertx, upstream.url(), upstream.apiKey(), upstream.models(),
          config.requestTimeout());
      upstreams.add(backend);
      Worker worker = new Worker("local:" + upstream.name(), upstream.name(), true, backend, List.of(),
          upstream.maxConcurrency(), upstream.embeddingBatchSize());
      router.register(worker);
      refreshers.add(() -> backend.models()
          .onSuccess(models -> {
            if (!models.equals(worker.models())) {
              router.update(worker, models, null, null);
            }
          })
          .onFailure(e -> log.warn("cannot list models of upstream {}: {}", backend.baseUrl(), e.getMessage())));
      joined.add(backend.models().onSuccess(models -> router.update(worker, models, null, null))
          .onFailure(e -> log.warn("upstream {} is not answering yet ({}); its models appear once it does",
              backend.baseUrl(), e.getMessage()))
          .otherwiseEmpty());
    }
    if (config.gguf().any()) {
      joined.add(startLocalModels(config.gguf()));
    }
    long every = config.modelPollInterval().toMillis();
    if (!refreshers.isEmpty() && every > 0) {
      pollTimer = vertx.setPeriodic(every, t -> refreshers.forEach(Runnable::run));
    }
    return Future.all(joined).mapEmpty();
  }

  /** Loads the GGUF files and adds them as one more local worker, with as many slots as llama.cpp has. */
  private Future<?> startLocalModels(ServerConfig.LocalModels local) {
    LlamaBackend llama = new LlamaBackend(vertx, new LlamaBackend.Options(local.ctxSize(), local.threads(), local.gpuLayers(),
        local.parallel()));
    localModels = llama;
    Worker worker = new Worker("local:gguf", "gguf", true, llama, List.of(), llama.slots(), 0);
    worker.loading(true);
    router.register(worker);
    return llama.load(local.files().stream().map(Path::of).toList(), local.embedding().stream().map(Path::of).toList())
        .onSuccess(names -> {
          router.update(worker, names, null, null);
          worker.loading(false);
        });
  }

  Future<Void> stop() {
    if (localModels != null) {
      localModels.close();
    }
    if (pollTimer >= 0) {
      vertx.cancelTimer(pollTimer);
    }
    return Future.all(upstreams.stream().map(UpstreamBackend::close).toList()).mapEmpty();
  }
}
