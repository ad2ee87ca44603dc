package io.switchboard.worker.llamacpp;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import de.kherud.llama.LlamaIterator;
import de.kherud.llama.LlamaModel;
import de.kherud.llama.LogLevel;
import de.kherud.llama.ModelParameters;
import de.kherud.llama.args.LogFormat;
import de.kherud.llama.args.PoolingType;
import io.netty.handler.codec.http.DefaultHttpHeaders;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaders;
import io.switchboard.protocol.Failures;
import io.switchboard.protocol.Json;
import io.switchboard.vertx.Blocking;
import io.switchboard.worker.backend.Backend;
import io.switchboard.worker.backend.BackendCall;
import io.switchboard.worker.backend.BackendRequest;
import io.switchboard.worker.backend.Failure;
import io.switchboard.worker.backend.ResponseSink;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves GGUF files in this process with llama.cpp (java-llama.cpp): chat completions with the
 * model's own chat template, completions and embeddings, with the OpenAI parameters that shape them
 * ({@link GenerationRequest}: {@code n}, log probabilities, JSON formats, tools) honoured or refused
 * with 400, streaming token by token, {@code usage}, and cancellation that stops generation at once. Each model is loaded once and
 * shared by its parallel slots; its name is the file name without {@code .gguf}.
 */
public final class LlamaBackend implements Backend {

  private static final Logger log = LoggerFactory.getLogger(LlamaBackend.class);
  private static final ObjectMapper JSON = Json.MAPPER;

  /**
   * How models are loaded.
   *
   * @param contextSize the context of all slots together (tokens)
   * @param threads CPU threads for generation
   * @param gpuLayers layers offloaded to a GPU (0: CPU only)
   * @param parallel slots: requests a model serves at once
   */
  public record Options(int contextSize, int threads, int gpuLayers, int parallel) {}

  private final Vertx vertx;
  private final Options options;
  private final Map<String, LlamaModel> models = new ConcurrentHashMap<>();
  private final Map<String, LlamaModel> embedders = new ConcurrentHashMap<>();
  /**
   * Platform threads, not virtual ones: a generation blocks inside native code, which would pin a
   * virtual thread's carrier and, with a few generations, stall every virtual thread of the process.
   */
  private final ExecutorService generators = Executors.newCachedThreadPool(Thread.ofPlatform().name("llama-", 0).daemon().factory());

  public LlamaBackend(Vertx vertx, Options options) {
    this.vertx = vertx;
    this.options = options;
  }

  /**
   * Loads the files, one after the other, off the event loop. A file that fails to load is logged
   * with its reason and left out; the others are served.
   *
   * @param generation models for chat and completions
   * @param embedding models for embeddings (opened with last-token pooling, which suits llama models)
   */
  public Future<List<String>> load(List<Path> generation, List<Path> embedding) {
    return Blocking.call(vertx, generators, () -> {
      generation.forEach(file -> open(file, false));
      embedding.forEach(file -> open(file, true));
      List<String> names = new ArrayList<>(models.keySet());
      names.addAll(embedders.keySet());
      return List.copyOf(names);
    });
  }

  private void open(Path file, boolean forEmbeddings) {
    String name = file.getFileName().toString().replaceFirst("(?i)\\.gguf$", "");
    if (!Files.isRegularFile(file)) {
      log.error("cannot load model {}: {} is not a file", name, file.toAbsolutePath());
      return;
    }
    long started = System.nanoTime();
    List<String> complaints = new CopyOnWriteArrayList<>();
    LlamaModel.setLogger(LogFormat.TEXT, (level, message) -> {
      if (level == LogLevel.ERROR || level == LogLevel.WARN) {
        complaints.add(message.strip());
      }
      log.debug("llama.cpp: {}", message.strip());
    });
    try {
      log.info("loading model {} from {} ({} MiB, context {}, {} slot(s), {} GPU layer(s){})", name, file, Files.size(file) >> 20,
          options.contextSize(), options.parallel(), options.gpuLayers(), forEmbeddings ? ", for embeddings" : "");
      ModelParameters parameters = new ModelParameters().setModel(file.toString()).setCtxSize(options.contextSize())
          .setThreads(options.threads()).setGpuLayers(options.gpuLayers()).setParallel(options.parallel());
      if (forEmbeddings) {
        // The default pooling gives every input the same vector, and MEAN aborts the process (llama.cpp b4916).
        parameters.enableEmbedding().setPoolingType(PoolingType.LAST);
      }
      LlamaModel model = new LlamaModel(parameters);
      (forEmbeddings ? embedders : models).put(name, model);
      log.info("model {} loaded in {} ms", name, (System.nanoTime() - started) / 1_000_000);
    } catch (IOException | RuntimeException e) {
      log.error("cannot load model {} from {}: {}{}", name, file, e.getMessage(),
          complaints.isEmpty() ? "" : " (llama.cpp: " + String.join("; ", complaints) + ")");
    }
  }

  /** How many requests this backend serves at once: its slots. */
  public int slots() {
    return options.parallel();
  }

  @Override
  public Future<List<String>> models() {
    List<String> names = new ArrayList<>(models.keySet());
    names.addAll(embedders.keySet());
    return Future.succeededFuture(List.copyOf(names));
  }

  @Override
  public BackendCall call(BackendRequest request, ResponseSink sink) {
    Context context = vertx.getOrCreateContext();
    AtomicBoolean cancelled = new AtomicBoolean();
    AtomicReference<LlamaIterator> running = new AtomicReference<>();
    generators.execute(() -> {
      try {
        run(request, new ContextSink(context, sink), cancelled, running);
      } catch (RuntimeException e) {
        log.warn("generation failed: {}", e.getMessage());
        context.runOnContext(v -> sink.end(new Failure(Failures.UPSTREAM_ERROR, "llama.cpp failed: " + e.getMessage())));
      }
    });
    return () -> {
      cancelled.set(true);
      LlamaIterator iterator = running.get();
      if (iterator != null) {
        iterator.cancel();
      }
    };
  }

  private void run(BackendRequest request, ContextSink sink, AtomicBoolean cancelled, AtomicReference<LlamaIterator> running) {
    JsonNode body;
    try {
      body = JSON.readTree(request.body().getBytes());
    } catch (IOException e) {
      sink.error(400, "request body is not JSON: " + e.getMessage(), null);
      return;
    }
    String name = body.path("model").asText();
    try {
      if (request.path().endsWith("/embeddings")) {
        embed(name, body, sink);
      } else if (request.path().endsWith("/completions")) {
        complete(name, body, request.path().endsWith("/chat/completions"), sink, cancelled, running);
      } else {
        sink.error(404, request.path() + " is not served by the llama.cpp backend: it serves chat completions, completions and "
            + "embeddings (rerank needs a rerank model behind an upstream or a managed llama-server)", null);
      }
    } catch (Refusal refusal) {
      sink.error(400, refusal.getMessage(), refusal.param());
    }
  }

  private void complete(String name, JsonNode body, boolean chat, ContextSink sink, AtomicBoolean cancelled,
      AtomicReference<LlamaIterator> running) {
    LlamaModel model = models.get(name);
    if (model == null) {
      sink.error(embedders.containsKey(name) ? 400 : 404, embedders.containsKey(name)
          ? "model '" + name + "' was loaded for embeddings only" : "model '" + name + "' is not loaded here", "model");
      return;
    }
    GenerationRequest parsed = GenerationRequest.parse(body, chat);
    new Completions(model, name, parsed, new Completions.Out() {
      @Override
      public void head(String contentType) {
        sink.head(200, contentType(contentType));
      }

      @Override
      public void data(String text) {
        sink.data(text);
      }

      @Override
      public void end() {
        sink.end();
      }
    }, cancelled, running).run();
  }

  private void embed(String name, JsonNode body, ContextSink sink) {
    LlamaModel model = embedders.get(name);
    if (model == null) {
      sink.error(models.containsKey(name) ? 400 : 404, models.containsKey(name)
          ? "model '" + name + "' was not loaded for embeddings; load it with --gguf-embedding" : "model '" + name + "' is not loaded here",
          "model");
      return;
    }
    ObjectNode answer = Embeddings.answer(model, name, body);
    sink.head(200, contentType("application/json"));
    sink.data(answer.toString());
    sink.end();
  }

  /** A fresh set of headers each time: the sink may change the ones it is given. */
  private static HttpHeaders contentType(String type) {
    return new DefaultHttpHeaders().add(HttpHeaderNames.CONTENT_TYPE, type);
  }

  /** Unloads every model. */
  @Override
  public Future<Void> close() {
    generators.shutdownNow();
    models.values().forEach(LlamaModel::close);
    embedders.values().forEach(LlamaModel::close);
    models.clear();
    embedders.clear();
    return Future.succeededFuture();
  }

  /** Hands what a generation thread produces to the request's Vert.x context, in order. */
  private static final class ContextSink {
    private final Context context;
    private final ResponseSink sink;

    ContextSink(Context context, ResponseSink sink) {
      this.context = context;
      this.sink = sink;
    }

    void head(int status, HttpHeaders headers) {
      context.runOnContext(v -> sink.head(status, headers));
    }

    void data(String text) {
      Buffer chunk = Buffer.buffer(text);
      context.runOnContext(v -> sink.chunk(chunk));
    }

    void end() {
      context.runOnContext(v -> sink.end(null));
    }

    /** OpenAI's error shape; {@code param} names the parameter at fault, where one is. */
    void error(int status, String message, String param) {
      ObjectNode body = JSON.createObjectNode();
      ObjectNode error = body.putObject("error").put("message", message).put("type", "invalid_request_error");
      if (param == null) {
        error.putNull("param");
      } else {
        error.put("param", param);
      }
      error.putNull("code");
      head(status, contentType("application/json"));
      data(body.toString());
      end();
    }
  }
}
