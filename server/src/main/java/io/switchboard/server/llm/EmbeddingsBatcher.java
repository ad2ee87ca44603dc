package io.switchboard.server.llm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.netty.handler.codec.http.DefaultHttpHeaders;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaders;
import io.switchboard.protocol.Json;
import io.switchboard.server.http.ApiError;
import io.switchboard.server.http.ApiException;
import io.switchboard.vertx.CallerContext;
import io.switchboard.worker.backend.BackendRequest;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

/**
 * Splits an embeddings request whose {@code input} array is larger than the workers' batch sizes
 * into batches of each worker's {@code embedding_batch_size}, spreads them over the workers that
 * serve the model, and puts the answers back together in input order with summed usage.
 */
final class EmbeddingsBatcher {

  /** A whole answer: the merged list, or the first failing batch's own status and body. */
  /** @param promptTokens the input tokens of a whole answer put together from batches; 0 for one batch's or a refusal */
  record Answer(int status, HttpHeaders headers, Buffer body, long promptTokens) {}

  private record Batch(int start, int size, String worker) {}

  private static final int MAX_PARALLEL = 16;

  private final Vertx vertx;
  private final LlmRouter router;
  private final SilenceWatch silence;

  EmbeddingsBatcher(Vertx vertx, LlmRouter router, SilenceWatch silence) {
    this.vertx = vertx;
    this.router = router;
    this.silence = silence;
  }

  /** The inputs to split, or null when the request can go to one worker as it is. */
  static ArrayNode splittableInputs(JsonNode request, List<Worker> serving) {
    JsonNode input = request.path("input");
    if (!input.isArray() || input.size() < 2 || !(input.get(0).isTextual() || input.get(0).isArray())) {
      return null;
    }
    for (Worker worker : serving) {
      int batch = worker.embeddingBatchSize();
      if (batch > 0 && batch < input.size()) {
        return (ArrayNode) input;
      }
    }
    return null;
  }

  /** A batched request in progress. */
  interface Run {
    Future<Answer> answer();

    /** The client went away: stop every batch still running or waiting. */
    void cancel();
  }

  /** Call it on the request's context: its answer completes there, whichever workers answer. */
  Run run(String model, ObjectNode request, ArrayNode inputs, Map<String, String> headers, List<Worker> serving) {
    List<Batch> batches = plan(inputs.size(), serving);
    Promise<Answer> result = CallerContext.promise(vertx);
    Buffer[] answers = new Buffer[batches.size()];
    int parallel = Math.min(MAX_PARALLEL, Math.max(1, serving.stream().mapToInt(Worker::maxConcurrency).sum()));
    Runner runner = new Runner(model, request, inputs, headers, batches, answers, result);
    runner.launch(parallel);
    return runner;
  }

  /** Batches in input order; each sized for the worker it is meant for, the workers taken in turn. */
  private static List<Batch> plan(int total, List<Worker> serving) {
    List<Worker> order = new ArrayList<>(serving);
    order.sort(Comparator.comparingInt((Worker w) -> w.maxConcurrency()).reversed());
    List<Batch> batches = new ArrayList<>();
    int position = 0;
    for (int turn = 0; position < total; turn++) {
      Worker worker = order.get(turn % order.size());
      int size = worker.embeddingBatchSize() == 0 ? total - position : Math.min(worker.embeddingBatchSize(), total - position);
      batches.add(new Batch(position, size, worker.id()));
      position += size;
    }
    return batches;
  }

  private final class Runner implements Run {
    private final String model;
    private final ObjectNode request;
    private final ArrayNode inputs;
    private final Map<String, String> headers;
    private final List<Batch> batches;
    private final Buffer[] answers;
    private final Promise<Answer> result;
    private final List<Dispatch> running = new ArrayList<>();
    private int next;
    private int done;

    Runner(String model, ObjectNode request, ArrayNode inputs, Map<String, String> headers, List<Batch> batches,
        Buffer[] answers, Promise<Answer> result) {
      this.model = model;
      this.request = request;
      this.inputs = inputs;
      this.headers = headers;
      this.batches = batches;
      this.answers = answers;
      this.result = result;
    }

    @Override
    public Future<Answer> answer() {
      return result.future();
    }

    @Override
    public void cancel() {
      List<Dispatch> toCancel;
      synchronized (this) {
        if (!result.tryFail(new ApiException(ApiError.internal("cancelled")))) {
          return;
        }
        toCancel = List.copyOf(running);
      }
      toCancel.forEach(Dispatch::cancel);
    }

    synchronized void launch(int count) {
      for (int i = 0; i < count && next < batches.size(); i++) {
        send(next++);
      }
    }

    private void send(int index) {
      Batch batch = batches.get(index);
      ObjectNode body = request.deepCopy();
      ArrayNode slice = body.putArray("input");
      for (int i = batch.start(); i < batch.start() + batch.size(); i++) {
        slice.add(inputs.get(i));
      }
      BackendRequest backendRequest = new BackendRequest("POST", "/embeddings", headers, false, Buffer.buffer(body.toString()));
      Collector collector = new Collector();
      Dispatch dispatch = new Dispatch(router, silence, model, backendRequest, batch.worker(), collector);
      running.add(dispatch);
      collector.answer.future().onComplete(ar -> {
        synchronized (this) {
          running.remove(dispatch);
        }
        onBatch(index, ar.succeeded() ? ar.result() : null, ar.cause());
      });
      dispatch.start();
    }

    private void onBatch(int index, Answer answer, Throwable failure) {
      synchronized (this) {
        if (result.future().isComplete()) {
          return;
        }
        if (failure != null) {
          result.fail(failure);
          return;
        }
        if (answer.status() != 200) {
          result.complete(answer);
          return;
        }
        answers[index] = answer.body();
        done++;
        if (done < batches.size()) {
          if (next < batches.size()) {
            send(next++);
          }
          return;
        }
      }
      try {
        result.complete(merge());
      } catch (IOException | RuntimeException e) {
        result.fail(new ApiException(ApiError.upstream("upstream_error", "a worker sent an embeddings answer that is not valid: " + e.getMessage())));
      }
    }

    private Answer merge() throws IOException {
      ObjectNode merged = Json.MAPPER.createObjectNode().put("object", "list");
      ArrayNode data = merged.putArray("data");
      long promptTokens = 0;
      long totalTokens = 0;
      String answeredModel = model;
      for (int i = 0; i < batches.size(); i++) {
        JsonNode part = Json.MAPPER.readTree(answers[i].getBytes());
        if (i == 0 && part.hasNonNull("model")) {
          answeredModel = part.get("model").asText();
        }
        int offset = batches.get(i).start();
        for (JsonNode item : part.path("data")) {
          ObjectNode copy = ((ObjectNode) item).deepCopy();
          copy.put("index", offset + item.path("index").asInt());
          data.add(copy);
        }
        promptTokens += part.path("usage").path("prompt_tokens").asLong();
        totalTokens += part.path("usage").path("total_tokens").asLong();
      }
      merged.put("model", answeredModel);
      merged.putObject("usage").put("prompt_tokens", promptTokens).put("total_tokens", totalTokens);
      return new Answer(200, new DefaultHttpHeaders().add(HttpHeaderNames.CONTENT_TYPE, "application/json"),
          Buffer.buffer(Json.MAPPER.writeValueAsBytes(merged)), promptTokens);
    }
  }

  /** Gathers one batch's whole answer. */
  private static final class Collector implements Dispatch.Downstream {
    final Promise<Answer> answer = Promise.promise();
    private int status;
    private HttpHeaders headers;
    private final Buffer body = Buffer.buffer();

    @Override
    public void head(Worker worker, int status, HttpHeaders headers) {
      this.status = status;
      this.headers = headers;
    }

    @Override
    public void chunk(Buffer data) {
      body.appendBuffer(data);
    }

    @Override
    public void complete() {
      answer.tryComplete(new Answer(status, headers, body, 0));
    }

    @Override
    public void fail(ApiError error, boolean headSent) {
      answer.tryFail(new ApiException(error));
    }
  }
}
