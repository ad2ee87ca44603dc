package io.switchboard.fakeupstream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerResponse;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Base64;
import java.util.List;

/** The OpenAI-shaped JSON the fake answers with. */
final class FakeAnswers {

  private static final ObjectMapper JSON = new ObjectMapper();

  private FakeAnswers() {}

  /** An embeddings answer: one vector per input, {@link FakeUpstream#embeddingOf} of its text, as floats or base64. */
  static ObjectNode embeddings(JsonNode request) {
    JsonNode input = request.path("input");
    ArrayNode texts = JSON.createArrayNode();
    if (input.isArray()) {
      input.forEach(texts::add);
    } else {
      texts.add(input);
    }
    ObjectNode answer = JSON.createObjectNode().put("object", "list").put("model", request.path("model").asText());
    ArrayNode data = answer.putArray("data");
    boolean base64 = "base64".equals(request.path("encoding_format").asText());
    int tokens = 0;
    for (int i = 0; i < texts.size(); i++) {
      String text = texts.get(i).isTextual() ? texts.get(i).asText() : texts.get(i).toString();
      tokens += text.length();
      ObjectNode item = data.addObject().put("object", "embedding").put("index", i);
      List<Double> vector = FakeUpstream.embeddingOf(text);
      if (base64) {
        ByteBuffer floats = ByteBuffer.allocate(4 * vector.size()).order(ByteOrder.LITTLE_ENDIAN);
        vector.forEach(v -> floats.putFloat(v.floatValue()));
        item.put("embedding", Base64.getEncoder().encodeToString(floats.array()));
      } else {
        ArrayNode values = item.putArray("embedding");
        vector.forEach(values::add);
      }
    }
    answer.set("usage", usage(tokens, 0));
    return answer;
  }

  /** A rerank answer: each document scored by its length. */
  static ObjectNode rerank(JsonNode request) {
    ObjectNode answer = JSON.createObjectNode().put("model", request.path("model").asText());
    ArrayNode results = answer.putArray("results");
    JsonNode documents = request.path("documents");
    for (int i = 0; i < documents.size(); i++) {
      results.addObject().put("index", i).put("relevance_score", documents.get(i).asText().length());
    }
    return answer;
  }

  static ObjectNode completion(String model, String object) {
    return JSON.createObjectNode()
        .put("id", "chatcmpl-fake")
        .put("object", object)
        .put("created", 1700000000)
        .put("model", model);
  }

  static ObjectNode usage(int prompt, int completion) {
    return JSON.createObjectNode()
        .put("prompt_tokens", prompt)
        .put("completion_tokens", completion)
        .put("total_tokens", prompt + completion);
  }

  static Buffer sse(JsonNode event) {
    return Buffer.buffer("data: " + event + "\n\n");
  }

  static void json(HttpServerResponse resp, int status, JsonNode body) {
    resp.setStatusCode(status).putHeader("Content-Type", "application/json").end(body.toString());
  }

  static void error(HttpServerResponse resp, int status, String message, String type) {
    ObjectNode body = JSON.createObjectNode();
    body.putObject("error").put("message", message).put("type", type).putNull("param").putNull("code");
    json(resp, status, body);
  }
}
