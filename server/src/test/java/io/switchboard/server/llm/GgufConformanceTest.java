package io.switchboard.server.llm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.openai.client.OpenAIClient;
import com.openai.core.JsonValue;
import com.openai.core.http.StreamResponse;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import io.switchboard.fakeupstream.TinyGguf;
import io.switchboard.protocol.Json;
import io.switchboard.worker.WorkerAgent;
import io.switchboard.worker.llamacpp.LlamaBackend;
import io.vertx.core.Vertx;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The OpenAI parameters that shape an answer, on the GGUF backend (llama.cpp in-process, a model the
 * test writes): each honoured, or refused with 400 and {@code param} naming it. The model's weights
 * are random, so what it says is noise; what these tests hold it to is the shape, which grammars and
 * the backend guarantee whatever it says.
 */
class GgufConformanceTest {

  private static final String CITY_SCHEMA = """
      {"type":"object","properties":{"city":{"enum":["paris","rome","oslo"]},"days":{"type":"integer","minimum":1,"maximum":9},
       "sunny":{"type":"boolean"}},"required":["city","days","sunny"],"additionalProperties":false}""";
  private static final String WEATHER_TOOL = """
      {"type":"function","function":{"name":"weather","description":"the weather in a city",
       "parameters":{"type":"object","properties":{"city":{"enum":["paris","rome"]},"days":{"type":"integer","minimum":1,"maximum":5}},
       "required":["city","days"],"additionalProperties":false}}}""";
  private static final String TIME_TOOL = """
      {"type":"function","function":{"name":"time","parameters":{"type":"object","properties":{"zone":{"enum":["utc","cet"]}},
       "required":["zone"],"additionalProperties":false}}}""";

  private static Vertx own;
  private static LlamaBackend backend;
  private static WorkerAgent worker;
  private static TestGateway gateway;

  @BeforeAll
  static void start() throws Exception {
    Path dir = Files.createTempDirectory("gguf");
    own = Vertx.vertx();
    backend = new LlamaBackend(own, new LlamaBackend.Options(4096, 2, 0, 2));
    gateway = TestGateway.start();
    worker = new WorkerAgent(own, gateway.workerConfig().withCapacity(backend.slots(), 0), backend);
    worker.start().await();
    worker.updateModels(backend.load(List.of(TinyGguf.write(dir.resolve("tiny.gguf"))),
        List.of(TinyGguf.write(dir.resolve("tiny-embed.gguf")))).await());
    TestGateway.eventually("the models are served", () -> gateway.server.llm().router().model("tiny-embed").isPresent());
  }

  @AfterAll
  static void stop() {
    worker.stop().await();
    gateway.close();
    backend.close();
    own.close().await();
  }

  private static JsonNode ok(HttpResponse<String> response) throws Exception {
    assertEquals(200, response.statusCode(), response.body());
    return Json.MAPPER.readTree(response.body());
  }

  private static void refused(String path, String body, String param) throws Exception {
    HttpResponse<String> response = gateway.post(path, body);
    assertEquals(400, response.statusCode(), body + " -> " + response.body());
    assertEquals(param, Json.MAPPER.readTree(response.body()).path("error").path("param").asText(), response.body());
  }

  private static String chat(String extra) {
    return "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]" + extra + "}";
  }

  @Test
  void embeddingsComeAsFloatsOrAsBase64OfTheSameFloats() throws Exception {
    JsonNode floats = ok(gateway.post("/v1/embeddings", "{\"model\":\"tiny-embed\",\"input\":\"hello world\"}"));
    JsonNode base64 = ok(gateway.post("/v1/embeddings", "{\"model\":\"tiny-embed\",\"input\":\"hello world\",\"encoding_format\":\"base64\"}"));
    JsonNode vector = floats.at("/data/0/embedding");
    ByteBuffer bytes = ByteBuffer.wrap(Base64.getDecoder().decode(base64.at("/data/0/embedding").asText())).order(ByteOrder.LITTLE_ENDIAN);
    assertEquals(vector.size() * 4, bytes.remaining());
    for (JsonNode value : vector) {
      assertEquals(value.floatValue(), bytes.getFloat(), 0.0f);
    }
    assertEquals(64, ok(gateway.post("/v1/embeddings", "{\"model\":\"tiny-embed\",\"input\":\"x\",\"dimensions\":64}"))
        .at("/data/0/embedding").size(), "the model's own size may be named");
    refused("/v1/embeddings", "{\"model\":\"tiny-embed\",\"input\":\"x\",\"dimensions\":8}", "dimensions");
    refused("/v1/embeddings", "{\"model\":\"tiny-embed\",\"input\":\"x\",\"encoding_format\":\"int8\"}", "encoding_format");
    refused("/v1/embeddings", "{\"model\":\"tiny-embed\",\"input\":\"\"}", "input");
  }

  @Test
  void nGivesThatManyChoicesAndUsageCountsThemAll() throws Exception {
    JsonNode answer = ok(gateway.post("/v1/chat/completions", chat(",\"n\":3,\"max_tokens\":4,\"seed\":1")));
    assertEquals(3, answer.path("choices").size());
    int tokens = 0;
    for (int i = 0; i < 3; i++) {
      assertEquals(i, answer.path("choices").get(i).path("index").asInt());
    }
    assertTrue(answer.at("/usage/completion_tokens").asInt() >= 3 && answer.at("/usage/completion_tokens").asInt() <= 12,
        answer.path("usage").toString());
    JsonNode completion = ok(gateway.post("/v1/completions", "{\"model\":\"tiny\",\"prompt\":[\"a\",\"b\"],\"n\":2,\"max_tokens\":2}"));
    assertEquals(4, completion.path("choices").size(), "two prompts, two choices each");
    refused("/v1/chat/completions", chat(",\"n\":17"), "n");
  }

  /** java-llama.cpp 4.2.0 aborts the process when asked for token probabilities: refused, never faked. */
  @Test
  void logprobsAreRefusedNamingTheParameter() throws Exception {
    refused("/v1/chat/completions", chat(",\"logprobs\":true,\"top_logprobs\":2"), "logprobs");
    refused("/v1/completions", "{\"model\":\"tiny\",\"prompt\":\"ab\",\"logprobs\":2}", "logprobs");
    JsonNode without = ok(gateway.post("/v1/chat/completions", chat(",\"logprobs\":false,\"max_tokens\":2")));
    assertTrue(without.at("/choices/0/logprobs").isNull(), "asked not to, there are none: " + without);
  }

  @Test
  void completionsEcho() throws Exception {
    JsonNode echoed = ok(gateway.post("/v1/completions", "{\"model\":\"tiny\",\"prompt\":\"hello\",\"max_tokens\":2,\"echo\":true}"));
    assertTrue(echoed.at("/choices/0/text").asText().startsWith("hello"));
    refused("/v1/completions", "{\"model\":\"tiny\",\"prompt\":\"a\",\"suffix\":\"b\"}", "suffix");
  }

  @Test
  void aJsonSchemaHoldsForEverySeed() throws Exception {
    Set<String> cities = new java.util.HashSet<>();
    for (int seed = 0; seed < 20; seed++) {
      JsonNode answer = ok(gateway.post("/v1/chat/completions", chat(",\"max_tokens\":200,\"seed\":" + seed + ",\"temperature\":1.5,"
          + "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"trip\",\"strict\":true,\"schema\":" + CITY_SCHEMA + "}}")));
      assertEquals("stop", answer.at("/choices/0/finish_reason").asText(), answer.toString());
      JsonNode trip = read(answer.at("/choices/0/message/content").asText());
      assertEquals(Set.of("city", "days", "sunny"), fieldNames(trip), trip.toString());
      assertTrue(Set.of("paris", "rome", "oslo").contains(trip.path("city").asText()), trip.toString());
      assertTrue(trip.path("days").isInt(), trip.toString());
      assertTrue(trip.path("sunny").isBoolean(), trip.toString());
      cities.add(trip.path("city").asText());
    }
    JsonNode object = ok(gateway.post("/v1/chat/completions", chat(",\"max_tokens\":300,\"seed\":3,\"response_format\":{\"type\":\"json_object\"}")));
    if (object.at("/choices/0/finish_reason").asText().equals("stop")) {
      assertTrue(Json.MAPPER.readTree(object.at("/choices/0/message/content").asText()).isObject());
    }
    refused("/v1/chat/completions", chat(",\"response_format\":{\"type\":\"yaml\"}"), "response_format");
    refused("/v1/chat/completions", chat(",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\"}}"), "response_format");
  }

  @Test
  void aForcedToolCallFitsItsFunctionForEverySeed() throws Exception {
    for (int seed = 0; seed < 20; seed++) {
      String choice = seed % 2 == 0 ? "\"required\"" : "{\"type\":\"function\",\"function\":{\"name\":\"weather\"}}";
      JsonNode answer = ok(gateway.post("/v1/chat/completions", chat(",\"max_tokens\":120,\"seed\":" + seed + ",\"temperature\":1.5,"
          + "\"tools\":[" + WEATHER_TOOL + "," + TIME_TOOL + "],\"tool_choice\":" + choice)));
      JsonNode message = answer.at("/choices/0/message");
      assertEquals("tool_calls", answer.at("/choices/0/finish_reason").asText(), answer.toString());
      JsonNode call = message.path("tool_calls").get(0);
      assertTrue(call.path("id").asText().startsWith("call_"));
      JsonNode arguments = Json.MAPPER.readTree(call.at("/function/arguments").asText());
      if (seed % 2 == 1 || call.at("/function/name").asText().equals("weather")) {
        assertEquals("weather", call.at("/function/name").asText());
        assertTrue(Set.of("paris", "rome").contains(arguments.path("city").asText()), arguments.toString());
        assertTrue(arguments.path("days").isInt(), arguments.toString());
      } else {
        assertEquals("time", call.at("/function/name").asText());
        assertTrue(Set.of("utc", "cet").contains(arguments.path("zone").asText()), arguments.toString());
      }
    }
    refused("/v1/chat/completions", chat(",\"tools\":[" + WEATHER_TOOL + "],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"nope\"}}"),
        "tool_choice");
    refused("/v1/chat/completions", chat(",\"tool_choice\":\"required\""), "tool_choice");
  }

  @Test
  void aToolRoundTripCallsThenReadsTheResultAndAnswers() {
    OpenAIClient openai = gateway.openai();
    ChatCompletionCreateParams.Builder ask = ChatCompletionCreateParams.builder().model("tiny").maxCompletionTokens(80).seed(5)
        .addUserMessage("weather in rome?")
        .putAdditionalBodyProperty("tools", JsonValue.from(List.of(Json.MAPPER.convertValue(read(WEATHER_TOOL), Map.class))))
        .putAdditionalBodyProperty("tool_choice", JsonValue.from("required"));
    ChatCompletion call = openai.chat().completions().create(ask.build());
    var toolCall = call.choices().getFirst().message().toolCalls().orElseThrow().getFirst();
    assertEquals("weather", toolCall.asFunction().function().name());

    ChatCompletion answer = openai.chat().completions().create(ChatCompletionCreateParams.builder().model("tiny").maxCompletionTokens(8)
        .addUserMessage("weather in rome?")
        .addMessage(call.choices().getFirst().message())
        .addMessage(com.openai.models.chat.completions.ChatCompletionToolMessageParam.builder()
            .toolCallId(toolCall.asFunction().id()).content("{\"temp\": 21}").build())
        .build());
    assertEquals(1, answer.choices().size(), "a tool's result is read, not refused (it was a 502)");
    assertTrue(answer.choices().getFirst().message().toolCalls().isEmpty() || answer.choices().getFirst().message().toolCalls().get().isEmpty());
  }

  @Test
  void aStreamedToolCallComesAsOpenAisDeltas() {
    OpenAIClient openai = gateway.openai();
    List<String> names = new ArrayList<>();
    StringBuilder arguments = new StringBuilder();
    Map<String, Integer> finishes = new HashMap<>();
    try (StreamResponse<ChatCompletionChunk> stream = openai.chat().completions().createStreaming(ChatCompletionCreateParams.builder()
        .model("tiny").addUserMessage("weather?").maxCompletionTokens(80).seed(2)
        .putAdditionalBodyProperty("tools", JsonValue.from(List.of(Json.MAPPER.convertValue(read(WEATHER_TOOL), Map.class))))
        .putAdditionalBodyProperty("tool_choice", JsonValue.from("required")).build())) {
      stream.stream().forEach(chunk -> chunk.choices().forEach(choice -> {
        choice.delta().toolCalls().ifPresent(calls -> calls.forEach(delta -> {
          delta.function().flatMap(f -> f.name()).ifPresent(names::add);
          delta.function().flatMap(f -> f.arguments()).ifPresent(arguments::append);
        }));
        choice.finishReason().ifPresent(f -> finishes.merge(f.toString(), 1, Integer::sum));
      }));
    }
    assertEquals(List.of("weather"), names, "the name comes once, first");
    assertTrue(read(arguments.toString()).path("days").isInt(), arguments.toString());
    assertEquals(Map.of("tool_calls", 1), finishes);
  }

  @Test
  void parametersThatCannotBeHonouredAreNamed() throws Exception {
    refused("/v1/chat/completions", chat(",\"reasoning_effort\":\"high\""), "reasoning_effort");
    refused("/v1/chat/completions", chat(",\"modalities\":[\"text\",\"audio\"]"), "modalities");
    refused("/v1/chat/completions", chat(",\"top_logprobs\":3"), "top_logprobs");
    refused("/v1/chat/completions", chat(",\"logit_bias\":{\"x\":1}"), "logit_bias");
    refused("/v1/chat/completions", "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
        + "\"image_url\":{\"url\":\"http://x/y.png\"}}]}]}", "messages");
    ok(gateway.post("/v1/chat/completions", chat(",\"max_tokens\":2,\"user\":\"u1\",\"metadata\":{\"a\":\"b\"},\"store\":false,"
        + "\"service_tier\":\"auto\",\"logit_bias\":{\"5\":-100}")));
  }

  private static JsonNode read(String json) {
    try {
      return Json.MAPPER.readTree(json);
    } catch (Exception e) {
      throw new AssertionError(json, e);
    }
  }

  private static Set<String> fieldNames(JsonNode node) {
    Set<String> names = new java.util.HashSet<>();
    node.fieldNames().forEachRemaining(names::add);
    return names;
  }
}
