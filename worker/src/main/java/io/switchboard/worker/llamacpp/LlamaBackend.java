package io.switchboard.worker.llamacpp;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import de.kherud.llama.InferenceParameters;
import de.kherud.llama.LlamaIterator;
import de.kherud.llama.LlamaModel;
import de.kherud.llama.LlamaOutput;
import de.kherud.llama.LogLevel;
import de.kherud.llama.ModelParameters;
import de.kherud.llama.Pair;
import de.kherud.llama.args.LogFormat;
import de.kherud.llama.args.PoolingType;
import io.netty.handler.codec.http.DefaultHttpHeaders;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaders;
import io.switchboard.protocol.Failures;
import io.switchboard.protocol.Json;
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
 * model's own chat template, completions, streaming token by token, {@code usage}, stop sequences,
 * sampling options, and cancellation that stops generation at once. Each model is loaded once and
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
    return vertx.executeBlocking(() -> {
      generation.forEach(file -> open(file, false));
      embedding.forEach(file -> open(file, true));
      List<String> names = new ArrayList<>(models.keySet());
      names.addAll(embedders.keySet());
      return List.copyOf(names);
    }, false);
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
      sink.error(400, "request body is not JSON: " + e.getMessage());
      return;
    }
    String name = body.path("model").asText();
    if (request.path().endsWith("/embeddings")) {
      embed(name, body, sink);
      return;
    }
    LlamaModel model = models.get(name);
    if (model == null) {
      sink.error(embedders.containsKey(name) ? 400 : 404, embedders.containsKey(name)
          ? "model '" + name + "' was loaded for embeddings only" : "model '" + name + "' is not loaded here");
      return;
    }
    boolean chat = request.path().endsWith("/chat/completions");
    if (!chat && !request.path().endsWith("/completions")) {
      sink.error(404, request.path() + " is not served by the llama.cpp backend");
      return;
    }
    String prompt = chat ? chatPrompt(model, body) : body.path("prompt").asText("");
    int maxTokens = body.path(chat && body.has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens").asInt(256);
    InferenceParameters params = new InferenceParameters(prompt).setNPredict(Math.max(1, maxTokens));
    if (body.has("temperature")) {
      params.setTemperature((float) body.get("temperature").asDouble());
    }
    if (body.has("top_p")) {
      params.setTopP((float) body.get("top_p").asDouble());
    }
    if (body.has("seed")) {
      params.setSeed(body.get("seed").asInt());
    }
    List<String> stops = new ArrayList<>();
    JsonNode stop = body.get("stop");
    if (stop != null && stop.isTextual()) {
      stops.add(stop.asText());
    } else if (stop != null && stop.isArray()) {
      stop.forEach(s -> stops.add(s.asText()));
    }
    if (!stops.isEmpty()) {
      params.setStopStrings(stops.toArray(String[]::new));
    }
    int promptTokens = model.encode(prompt).length + 1;
    boolean stream = body.path("stream").asBoolean(false);
    boolean includeUsage = body.path("stream_options").path("include_usage").asBoolean(false);
    String id = (chat ? "chatcmpl-" : "cmpl-") + Long.toHexString(System.nanoTime());
    long created = System.currentTimeMillis() / 1000;
    OpenAiShape shape = new OpenAiShape(id, name, created, chat);
    if (stream) {
      sink.head(200, contentType("text/event-stream"));
      if (chat) {
        sink.data(shape.roleChunk());
      }
    }
    StringBuilder text = new StringBuilder();
    int completionTokens = 0;
    LlamaIterator iterator = model.generate(params).iterator();
    running.set(iterator);
    if (cancelled.get()) {
      iterator.cancel();
      return;
    }
    while (iterator.hasNext()) {
      LlamaOutput output = iterator.next();
      if (cancelled.get()) {
        iterator.cancel();
        return;
      }
      if (output.text.isEmpty()) {
        continue;
      }
      completionTokens++;
      text.append(output.text);
      if (stream) {
        sink.data(shape.tokenChunk(output.text));
      }
    }
    String finish = completionTokens >= maxTokens ? "length" : "stop";
    ObjectNode usage = JSON.createObjectNode().put("prompt_tokens", promptTokens).put("completion_tokens", completionTokens)
        .put("total_tokens", promptTokens + completionTokens);
    if (stream) {
      sink.data(shape.finishChunk(finish));
      if (includeUsage) {
        sink.data(shape.usageChunk(usage));
      }
      sink.data("data: [DONE]\n\n");
      sink.end();
    } else {
      sink.head(200, contentType("application/json"));
      sink.data(shape.answer(text.toString(), finish, usage).toString());
      sink.end();
    }
  }

  private void embed(String name, JsonNode body, ContextSink sink) {
    LlamaModel model = embedders.get(name);
    if (model == null) {
      sink.error(models.containsKey(name) ? 400 : 404, models.containsKey(name)
          ? "model '" + name + "' was not loaded for embeddings; load it with --gguf-embedding" : "model '" + name + "' is not loaded here");
      return;
    }
    List<String> inputs = new ArrayList<>();
    JsonNode input = body.path("input");
    if (input.isTextual()) {
      inputs.add(input.asText());
    } else if (input.isArray() && !input.isEmpty()) {
      input.forEach(item -> inputs.add(item.asText()));
    } else {
      sink.error(400, "input must be a string or an array of strings");
      return;
    }
    ObjectNode answer = JSON.createObjectNode().put("object", "list").put("model", name);
    ArrayNode data = answer.putArray("data");
    int tokens = 0;
    for (int i = 0; i < inputs.size(); i++) {
      float[] vector = model.embed(inputs.get(i));
      tokens += model.encode(inputs.get(i)).length + 1;
      ArrayNode values = data.addObject().put("object", "embedding").put("index", i).putArray("embedding");
      for (float v : vector) {
        values.add(v);
      }
    }
    answer.putObject("usage").put("prompt_tokens", tokens).put("total_tokens", tokens);
    sink.head(200, contentType("application/json"));
    sink.data(answer.toString());
    sink.end();
  }

  /** The prompt the model's own chat template makes of the messages. */
  private static String chatPrompt(LlamaModel model, JsonNode body) {
    String system = null;
    List<Pair<String, String>> messages = new ArrayList<>();
    for (JsonNode message : body.path("messages")) {
      String role = message.path("role").asText("user");
      JsonNode content = message.path("content");
      String text = content.isTextual() ? content.asText() : textParts(content);
      if (role.equals("system") && system == null && messages.isEmpty()) {
        system = text;
      } else {
        messages.add(new Pair<>(role, text));
      }
    }
    return model.applyTemplate(new InferenceParameters("").setMessages(system, messages));
  }

  /** A fresh set of headers each time: the sink may change the ones it is given. */
  private static HttpHeaders contentType(String type) {
    return new DefaultHttpHeaders().add(HttpHeaderNames.CONTENT_TYPE, type);
  }

  private static String textParts(JsonNode content) {
    StringBuilder text = new StringBuilder();
    content.forEach(part -> text.append(part.path("text").asText("")));
    return text.toString();
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

    void error(int status, String message) {
      ObjectNode body = JSON.createObjectNode();
      body.putObject("error").put("message", message).put("type", "invalid_request_error").putNull("param").putNull("code");
      head(status, contentType("application/json"));
      data(body.toString());
      end();
    }
  }

  /** The OpenAI shapes of answers and stream chunks. */
  private record OpenAiShape(String id, String model, long created, boolean chat) {

    private ObjectNode base(String object) {
      return JSON.createObjectNode().put("id", id).put("object", object).put("created", created).put("model", model);
    }

    String roleChunk() {
      ObjectNode chunk = base("chat.completion.chunk");
      chunk.putArray("choices").addObject().put("index", 0).putNull("finish_reason").putObject("delta").put("role", "assistant")
          .put("content", "");
      return sse(chunk);
    }

    String tokenChunk(String text) {
      if (!chat) {
        ObjectNode chunk = base("text_completion");
        chunk.putArray("choices").addObject().put("index", 0).put("text", text).putNull("finish_reason");
        return sse(chunk);
      }
      ObjectNode chunk = base("chat.completion.chunk");
      chunk.putArray("choices").addObject().put("index", 0).putNull("finish_reason").putObject("delta").put("content", text);
      return sse(chunk);
    }

    String finishChunk(String finish) {
      ObjectNode chunk = base(chat ? "chat.completion.chunk" : "text_completion");
      ObjectNode choice = chunk.putArray("choices").addObject().put("index", 0).put("finish_reason", finish);
      if (chat) {
        choice.putObject("delta");
      } else {
        choice.put("text", "");
      }
      return sse(chunk);
    }

    String usageChunk(ObjectNode usage) {
      ObjectNode chunk = base(chat ? "chat.completion.chunk" : "text_completion");
      chunk.putArray("choices");
      chunk.set("usage", usage);
      return sse(chunk);
    }

    ObjectNode answer(String text, String finish, ObjectNode usage) {
      ObjectNode answer = base(chat ? "chat.completion" : "text_completion");
      ObjectNode choice = answer.putArray("choices").addObject().put("index", 0).put("finish_reason", finish);
      if (chat) {
        choice.putObject("message").put("role", "assistant").put("content", text);
      } else {
        choice.put("text", text);
      }
      answer.set("usage", usage);
      return answer;
    }

    private static String sse(ObjectNode chunk) {
      return "data: " + chunk + "\n\n";
    }
  }
}
