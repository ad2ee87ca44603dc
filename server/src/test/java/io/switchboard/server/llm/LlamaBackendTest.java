package io.switchboard.server.llm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.openai.client.OpenAIClient;
import com.openai.core.http.StreamResponse;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionStreamOptions;
import com.openai.models.embeddings.CreateEmbeddingResponse;
import com.openai.models.embeddings.EmbeddingCreateParams;
import io.switchboard.fakeupstream.TinyGguf;
import io.switchboard.server.ServerConfig;
import io.switchboard.worker.WorkerAgent;
import io.switchboard.worker.llamacpp.LlamaBackend;
import io.vertx.core.Vertx;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Real llama.cpp inference on a GGUF the test writes, through the server, with the OpenAI SDK as the client. */
class LlamaBackendTest {

  @Test
  void aWorkerServesAGgufFileItLoadedItself() throws Exception {
    Path dir = Files.createTempDirectory("gguf");
    Path model = TinyGguf.write(dir.resolve("tiny.gguf"));
    Path broken = Files.writeString(dir.resolve("broken.gguf"), "not a model");
    Path embedder = TinyGguf.write(dir.resolve("tiny-embed.gguf"));
    Vertx own = Vertx.vertx();
    LlamaBackend backend = new LlamaBackend(own, new LlamaBackend.Options(1024, 2, 0, 2));
    try (TestGateway gateway = TestGateway.start()) {
      WorkerAgent worker = new WorkerAgent(own, gateway.workerConfig().withCapacity(backend.slots(), 0), backend);
      worker.loading(true);
      worker.start().await();
      TestGateway.eventually("the state shows the worker loading", () -> workerStatus(gateway).equals("loading"));
      List<String> loaded = backend.load(List.of(broken, model), List.of(embedder)).await();
      assertEquals(List.of("tiny", "tiny-embed"), loaded, "the broken file is left out, the good ones served");
      worker.updateModels(loaded);
      worker.loading(false);
      TestGateway.eventually("the state shows the worker ready", () -> workerStatus(gateway).equals("ready"));
      TestGateway.eventually("its models are served", () -> gateway.server.llm().router().model("tiny").isPresent());
      OpenAIClient openai = gateway.openai();

      ChatCompletion answer = openai.chat().completions().create(ChatCompletionCreateParams.builder()
          .model("tiny").addUserMessage("hello world").maxCompletionTokens(8).seed(7).temperature(0.0).build());
      long generated = answer.usage().orElseThrow().completionTokens();
      assertTrue(generated >= 1 && generated <= 8, "at most max tokens: " + generated);
      assertEquals(generated == 8 ? "length" : "stop", answer.choices().getFirst().finishReason().toString());
      assertTrue(answer.usage().orElseThrow().promptTokens() > 5, "the chat template made a prompt of several tokens");
      assertEquals("assistant", answer.choices().getFirst().message()._role().toString().replace("\"", ""));

      List<String> pieces = new ArrayList<>();
      long[] usage = new long[1];
      try (StreamResponse<ChatCompletionChunk> stream = openai.chat().completions().createStreaming(ChatCompletionCreateParams.builder()
          .model("tiny").addUserMessage("hello").maxCompletionTokens(6)
          .streamOptions(ChatCompletionStreamOptions.builder().includeUsage(true).build()).build())) {
        stream.stream().forEach(chunk -> {
          chunk.choices().forEach(choice -> choice.delta().content().filter(t -> !t.isEmpty()).ifPresent(pieces::add));
          chunk.usage().ifPresent(u -> usage[0] = u.completionTokens());
        });
      }
      assertFalse(pieces.isEmpty(), "tokens streamed one by one");
      assertEquals(pieces.size(), usage[0], "usage counts the streamed tokens");
      assertTrue(usage[0] <= 6);

      try (ExecutorService threads = Executors.newFixedThreadPool(2)) {
        List<Future<Long>> both = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
          both.add(threads.submit(() -> openai.chat().completions().create(ChatCompletionCreateParams.builder()
              .model("tiny").addUserMessage("test model").maxCompletionTokens(20).build()).usage().orElseThrow().completionTokens()));
        }
        for (Future<Long> one : both) {
          long tokens = one.get(60, TimeUnit.SECONDS);
          assertTrue(tokens >= 1 && tokens <= 20, "two requests in parallel slots: " + tokens);
        }
      }

      CreateEmbeddingResponse embeddings = openai.embeddings().create(EmbeddingCreateParams.builder().model("tiny-embed")
          .inputOfArrayOfStrings(List.of("hello world", "switch board")).build());
      assertEquals(2, embeddings.data().size());
      assertEquals(64, embeddings.data().get(0).embedding().size(), "one value per embedding dimension");
      assertFalse(embeddings.data().get(0).embedding().equals(embeddings.data().get(1).embedding()), "different texts, different vectors");
      assertTrue(embeddings.usage().promptTokens() > 2);
      assertEquals(400, gateway.post("/v1/embeddings", "{\"model\":\"tiny\",\"input\":\"x\"}").statusCode(),
          "a chat model was not loaded for embeddings");

      CompletableFuture<Integer> cut = CompletableFuture.supplyAsync(() -> {
        try (StreamResponse<ChatCompletionChunk> stream = openai.chat().completions().createStreaming(
            ChatCompletionCreateParams.builder().model("tiny").addUserMessage("stream").maxCompletionTokens(400).build())) {
          return (int) stream.stream().limit(3).count();
        }
      });
      assertEquals(3, cut.get(30, TimeUnit.SECONDS));
      TestGateway.eventually("the cancelled generation gave its slot back",
          () -> gateway.server.llm().router().workers().stream().allMatch(w -> gateway.server.llm().router().inFlight(w) == 0));
      worker.stop().await();
    } finally {
      backend.close();
      own.close().await();
    }
  }

  @Test
  void theServersOwnLocalWorkerServesGgufFiles() throws Exception {
    Path model = TinyGguf.write(Files.createTempDirectory("gguf").resolve("local-tiny.gguf"));
    ServerConfig base = TestGateway.config(null, null, 10, Duration.ofSeconds(5), Duration.ofSeconds(10), List.of());
    ServerConfig config = new ServerConfig(base.host(), 0, base.dataDir(), null, null, base.requestTimeout(), base.queueSize(),
        base.queueTimeout(), base.drainTimeout(), base.heartbeatInterval(), base.maxBodyBytes(), base.maxFrameBytes(),
        base.modelPollInterval(), List.of(), null, null, null, null, null, null, null, null,
        new ServerConfig.LocalModels(List.of(model.toString()), null, 1024, 2, 0, 1), null, null);
    try (TestGateway gateway = TestGateway.start(config)) {
      Worker local = gateway.server.llm().router().worker("local:gguf").orElseThrow();
      assertEquals(List.of("local-tiny"), local.models());
      assertEquals(1, local.maxConcurrency(), "one slot, as configured");
      assertEquals(200, gateway.post("/v1/chat/completions",
          "{\"model\":\"local-tiny\",\"max_tokens\":3,\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}").statusCode());
    }
  }

  private static String workerStatus(TestGateway gateway) {
    try {
      return new ObjectMapper().readTree(gateway.get("/api/state").body()).at("/plugins/llm/workers/0/status").asText();
    } catch (Exception e) {
      return "";
    }
  }
}
