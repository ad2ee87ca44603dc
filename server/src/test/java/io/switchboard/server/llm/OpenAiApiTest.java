package io.switchboard.server.llm;

import static io.switchboard.server.llm.TestGateway.chatBody;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.openai.client.OpenAIClient;
import com.openai.core.http.StreamResponse;
import com.openai.errors.NotFoundException;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.embeddings.CreateEmbeddingResponse;
import com.openai.models.embeddings.EmbeddingCreateParams;
import com.openai.models.models.Model;
import io.switchboard.fakeupstream.FakeUpstream;
import java.net.http.HttpResponse;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The OpenAI API through two dialed-in workers, driven by the official OpenAI Java SDK. */
class OpenAiApiTest {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static TestGateway gateway;
  private static FakeUpstream small;
  private static FakeUpstream large;
  private static OpenAIClient openai;

  @BeforeAll
  static void start() {
    gateway = TestGateway.start();
    small = gateway.fake(FakeUpstream.Behavior.defaults().withModels("chat", "embed").withTokens(12, 0));
    large = gateway.fake(FakeUpstream.Behavior.defaults().withModels("chat", "embed").withTokens(12, 0));
    gateway.worker(small, c -> c.withIdentity("small", "small-gpu").withCapacity(2, 3));
    gateway.worker(large, c -> c.withIdentity("large", "large-gpu").withCapacity(4, 5));
    gateway.worker(gateway.fake(FakeUpstream.Behavior.defaults().withModels("verbose").withTokens(10_000, 0)),
        c -> c.withIdentity("verbose", null));
    openai = gateway.openai();
  }

  @AfterAll
  static void stop() {
    gateway.close();
  }

  private static ChatCompletionCreateParams chat(String model) {
    return ChatCompletionCreateParams.builder().model(model).addUserMessage("hello").build();
  }

  private static String expectedText(int tokens) {
    return IntStream.range(0, tokens).mapToObj(i -> "tok" + i).collect(Collectors.joining(" "));
  }

  @Test
  void completesAChat() {
    ChatCompletion completion = openai.chat().completions().create(chat("chat"));

    assertEquals(expectedText(12), completion.choices().get(0).message().content().orElseThrow());
    assertEquals(12, completion.usage().orElseThrow().completionTokens());
  }

  @Test
  void streamsAChatInOrder() {
    StringBuilder text = new StringBuilder();
    int chunks = 0;
    try (StreamResponse<ChatCompletionChunk> stream = openai.chat().completions().createStreaming(chat("chat"))) {
      for (ChatCompletionChunk chunk : (Iterable<ChatCompletionChunk>) stream.stream()::iterator) {
        chunks++;
        chunk.choices().forEach(choice -> choice.delta().content().ifPresent(text::append));
      }
    }

    assertEquals(expectedText(12), text.toString());
    assertEquals(14, chunks, "role chunk, 12 token chunks and the finish chunk");
  }

  @Test
  void spreadsRequestsOverBothWorkers() {
    Set<String> served = new HashSet<>();
    for (int i = 0; i < 6; i++) {
      HttpResponse<String> response = gateway.post("/v1/chat/completions", chatBody("chat", false));
      assertEquals(200, response.statusCode());
      served.add(response.headers().firstValue("X-Switchboard-Worker").orElseThrow());
    }
    assertEquals(Set.of("small", "large"), served);
  }

  @Test
  void servesTheSameApiUnderTheLlmPluginPath() throws Exception {
    HttpResponse<String> response = gateway.post("/api/llm/v1/chat/completions", chatBody("chat", false));

    assertEquals(200, response.statusCode());
    assertEquals(expectedText(12), JSON.readTree(response.body()).at("/choices/0/message/content").asText());
  }

  @Test
  void listsAndGetsModels() throws Exception {
    List<String> ids = openai.models().list().data().stream().map(Model::id).toList();
    assertEquals(List.of("chat", "embed", "verbose"), ids);

    Model model = openai.models().retrieve("chat");
    assertEquals("chat", model.id());
    JsonNode raw = JSON.readTree(gateway.get("/api/llm/v1/models/chat").body());
    assertEquals(Set.of("small-gpu", "large-gpu"), new HashSet<>(JSON.convertValue(raw.get("workers"), List.class)));

    assertThrows(NotFoundException.class, () -> openai.models().retrieve("no-such-model"));
  }

  @Test
  void refusesUnknownModelsBadJsonAndMissingModel() throws Exception {
    HttpResponse<String> unknown = gateway.post("/v1/chat/completions", chatBody("nope", false));
    assertEquals(404, unknown.statusCode());
    assertEquals("model_not_found", JSON.readTree(unknown.body()).at("/error/code").asText());

    HttpResponse<String> broken = gateway.post("/v1/chat/completions", "{\"model\": \"chat\", \"messages\": [");
    assertEquals(400, broken.statusCode());
    assertEquals("invalid_request_error", JSON.readTree(broken.body()).at("/error/type").asText());

    HttpResponse<String> noModel = gateway.post("/v1/chat/completions", "{\"messages\": []}");
    assertEquals(400, noModel.statusCode());
    assertTrue(JSON.readTree(noModel.body()).at("/error/message").asText().contains("model"));
  }

  @Test
  void refusesBodiesOverTheLimitWith413() throws Exception {
    String huge = "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"" + "x".repeat(2 << 20) + "\"}]}";

    HttpResponse<String> response = gateway.post("/v1/chat/completions", huge);

    assertEquals(413, response.statusCode());
    assertEquals("request_too_large", JSON.readTree(response.body()).at("/error/code").asText());
  }

  @Test
  void carriesBodiesLargerThanOneFrame() throws Exception {
    String prompt = "y".repeat(300_000);
    String body = "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"" + prompt + "\"}]}";

    HttpResponse<String> response = gateway.post("/v1/chat/completions", body);

    assertEquals(200, response.statusCode());
    assertEquals(expectedText(12), JSON.readTree(response.body()).at("/choices/0/message/content").asText());
  }

  @Test
  void carriesAnswersLargerThanOneFrameWholeAndInOrder() throws Exception {
    HttpResponse<String> plain = gateway.post("/v1/chat/completions", chatBody("verbose", false));
    assertEquals(200, plain.statusCode());
    assertEquals(expectedText(10_000), JSON.readTree(plain.body()).at("/choices/0/message/content").asText());

    StringBuilder streamed = new StringBuilder();
    try (StreamResponse<ChatCompletionChunk> stream = openai.chat().completions().createStreaming(chat("verbose"))) {
      stream.stream().forEach(chunk -> chunk.choices().forEach(choice -> choice.delta().content().ifPresent(streamed::append)));
    }
    assertEquals(expectedText(10_000), streamed.toString());
  }

  @Test
  void batchesLargeEmbeddingInputsAndKeepsTheirOrder() {
    List<String> inputs = IntStream.range(0, 23).mapToObj(i -> "text number " + i + "!".repeat(i)).toList();
    double tokensBefore = embedTokensCounted();
    int smallBefore = small.embeddingBatchSizes().size();
    int largeBefore = large.embeddingBatchSizes().size();

    CreateEmbeddingResponse response = openai.embeddings().create(
        EmbeddingCreateParams.builder().model("embed").inputOfArrayOfStrings(inputs).build());

    assertEquals(23, response.data().size());
    for (int i = 0; i < inputs.size(); i++) {
      assertEquals(i, response.data().get(i).index());
      List<Float> expected = FakeUpstream.embeddingOf(inputs.get(i)).stream().map(Double::floatValue).toList();
      assertEquals(expected, response.data().get(i).embedding(), "embedding of input " + i);
    }
    int characters = inputs.stream().mapToInt(String::length).sum();
    assertEquals(characters, response.usage().promptTokens());
    assertEquals(characters, response.usage().totalTokens());
    assertEquals(characters, embedTokensCounted() - tokensBefore, 0.0, "the answer put together is counted in the metrics");
    List<Integer> toSmall = small.embeddingBatchSizes().subList(smallBefore, small.embeddingBatchSizes().size());
    List<Integer> toLarge = large.embeddingBatchSizes().subList(largeBefore, large.embeddingBatchSizes().size());
    assertTrue(!toSmall.isEmpty() && !toLarge.isEmpty(), "both workers got batches: " + toSmall + " " + toLarge);
    assertTrue(toSmall.stream().allMatch(n -> n <= 3), "small worker batches " + toSmall);
    assertTrue(toLarge.stream().allMatch(n -> n <= 5), "large worker batches " + toLarge);
    assertEquals(23, toSmall.stream().mapToInt(Integer::intValue).sum() + toLarge.stream().mapToInt(Integer::intValue).sum());
  }

  /** The input tokens of model {@code embed} in the Prometheus metrics. */
  private static double embedTokensCounted() {
    return gateway.get("/metrics").body().lines().filter(line -> line.startsWith("switchboard_tokens_total{")
            && line.contains("direction=\"in\"") && line.contains("model=\"embed\""))
        .mapToDouble(line -> Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1))).sum();
  }

  @Test
  void sendsASmallEmbeddingRequestToOneWorkerAsItIs() {
    CreateEmbeddingResponse response = openai.embeddings().create(
        EmbeddingCreateParams.builder().model("embed").input("just one").build());

    assertEquals(1, response.data().size());
    assertEquals(FakeUpstream.embeddingOf("just one").stream().map(Double::floatValue).toList(), response.data().get(0).embedding());
  }
}
