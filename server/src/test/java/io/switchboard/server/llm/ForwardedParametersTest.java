package io.switchboard.server.llm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.openai.core.http.StreamResponse;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import io.switchboard.fakeupstream.FakeUpstream;
import io.switchboard.protocol.Json;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A worker over an upstream (llama-server, vLLM, a managed instance: the same proxy path) gets the
 * client's body as it was sent: every parameter that shapes the answer is the upstream's to honour.
 * The one change is the server's own: a stream that did not ask for usage asks for it, so that it
 * is counted, and its client never sees the answer.
 */
class ForwardedParametersTest {

  private static final String SHAPING = """
      {"model":"chat","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":null,
       "tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},
       {"role":"tool","tool_call_id":"call_1","content":"42"}],
       "n":2,"logprobs":true,"top_logprobs":3,"seed":7,"stop":["x"],"logit_bias":{"5":-100},
       "response_format":{"type":"json_schema","json_schema":{"name":"a","schema":{"type":"object"}}},
       "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"required",
       "reasoning_effort":"low","max_completion_tokens":3}""";

  @Test
  void theUpstreamGetsTheBodyAsTheClientSentIt() throws Exception {
    try (TestGateway gateway = TestGateway.start()) {
      FakeUpstream fake = gateway.fake(FakeUpstream.Behavior.defaults().withModels("chat"));
      gateway.worker(fake);
      HttpResponse<String> answer = gateway.post("/v1/chat/completions", SHAPING);
      assertEquals(200, answer.statusCode(), answer.body());
      assertEquals(Json.MAPPER.readTree(SHAPING), fake.lastBody());

      String embeddings = "{\"model\":\"chat\",\"input\":[\"a\",\"b\"],\"encoding_format\":\"base64\",\"dimensions\":8}";
      assertEquals(200, gateway.post("/v1/embeddings", embeddings).statusCode());
      assertEquals(Json.MAPPER.readTree(embeddings), fake.lastBody());
    }
  }

  @Test
  void aStreamThatDidNotAskForUsageIsCountedAndItsClientSeesNoUsage() throws Exception {
    try (TestGateway gateway = TestGateway.start()) {
      FakeUpstream fake = gateway.fake(FakeUpstream.Behavior.defaults().withModels("chat").withTokens(9, 0));
      gateway.worker(fake);
      List<String> pieces = new ArrayList<>();
      boolean[] usageSeen = {false};
      try (StreamResponse<ChatCompletionChunk> stream = gateway.openai().chat().completions().createStreaming(
          ChatCompletionCreateParams.builder().model("chat").addUserMessage("hi").build())) {
        stream.stream().forEach(chunk -> {
          chunk.choices().forEach(choice -> choice.delta().content().filter(t -> !t.isEmpty()).ifPresent(pieces::add));
          usageSeen[0] |= chunk.usage().isPresent() || chunk.choices().isEmpty();
        });
      }
      assertEquals(9, pieces.size());
      assertFalse(usageSeen[0], "the usage chunk was the server's");
      JsonNode forwarded = fake.lastBody();
      assertTrue(forwarded.path("stream_options").path("include_usage").asBoolean(), forwarded.toString());
      assertEquals(9, MetricsTest.sample(MetricsTest.parse(gateway.get("/metrics").body()), "switchboard_tokens_total",
          "model=\"chat\"", "direction=\"out\""), "counted all the same");

      String asked = "{\"model\":\"chat\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
          + "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
      assertTrue(gateway.post("/v1/chat/completions", asked).body().contains("\"usage\""), "asked for, it is there");
      String declined = "{\"model\":\"chat\",\"stream\":true,\"stream_options\":{\"include_usage\":false},"
          + "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
      gateway.post("/v1/chat/completions", declined);
      assertEquals(Json.MAPPER.readTree(declined), fake.lastBody(), "the client's own stream_options are left as they are");
    }
  }
}
