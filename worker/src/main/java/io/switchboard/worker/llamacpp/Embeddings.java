package io.switchboard.worker.llamacpp;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import de.kherud.llama.LlamaModel;
import io.switchboard.protocol.Json;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

/**
 * OpenAI's embeddings on a GGUF model: each input's vector as floats or, as the OpenAI SDKs ask by
 * default, base64 of little-endian float32s. The model makes vectors of one size: {@code dimensions}
 * other than that is refused, not cut.
 */
final class Embeddings {

  private Embeddings() {}

  static ObjectNode answer(LlamaModel model, String name, JsonNode body) {
    String format = body.path("encoding_format").asText("float");
    if (!format.equals("float") && !format.equals("base64")) {
      throw new Refusal("encoding_format", "encoding_format must be float or base64");
    }
    List<String> inputs = inputs(model, body.get("input"));
    List<float[]> vectors = new ArrayList<>();
    int tokens = 0;
    for (String input : inputs) {
      vectors.add(model.embed(input));
      tokens += model.encode(input).length + 1;
    }
    JsonNode dimensions = body.get("dimensions");
    int size = vectors.getFirst().length;
    if (dimensions != null && !dimensions.isNull() && (!dimensions.isIntegralNumber() || dimensions.intValue() != size)) {
      throw new Refusal("dimensions", "model '" + name + "' makes " + size + "-dimensional embeddings; it cannot make " + dimensions);
    }
    ObjectNode answer = Json.MAPPER.createObjectNode().put("object", "list").put("model", name);
    ArrayNode data = answer.putArray("data");
    for (int i = 0; i < vectors.size(); i++) {
      ObjectNode item = data.addObject().put("object", "embedding").put("index", i);
      float[] vector = vectors.get(i);
      if (format.equals("base64")) {
        ByteBuffer bytes = ByteBuffer.allocate(4 * vector.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : vector) {
          bytes.putFloat(v);
        }
        item.put("embedding", Base64.getEncoder().encodeToString(bytes.array()));
      } else {
        ArrayNode values = item.putArray("embedding");
        for (float v : vector) {
          values.add(v);
        }
      }
    }
    answer.putObject("usage").put("prompt_tokens", tokens).put("total_tokens", tokens);
    return answer;
  }

  /** A string, strings, token ids or arrays of token ids (decoded with the model's own vocabulary). */
  private static List<String> inputs(LlamaModel model, JsonNode input) {
    List<String> inputs = new ArrayList<>();
    if (input != null && input.isTextual()) {
      inputs.add(input.asText());
    } else if (input != null && input.isArray() && !input.isEmpty() && input.get(0).isIntegralNumber()) {
      inputs.add(decode(model, input));
    } else if (input != null && input.isArray() && !input.isEmpty()) {
      for (JsonNode item : input) {
        if (item.isTextual()) {
          inputs.add(item.asText());
        } else if (item.isArray() && !item.isEmpty()) {
          inputs.add(decode(model, item));
        } else {
          throw new Refusal("input", "input must be a string, an array of strings, or token ids");
        }
      }
    } else {
      throw new Refusal("input", "input must be a non-empty string or array");
    }
    if (inputs.stream().anyMatch(String::isEmpty)) {
      throw new Refusal("input", "an input is empty; every input must have text");
    }
    return inputs;
  }

  private static String decode(LlamaModel model, JsonNode ids) {
    int[] tokens = new int[ids.size()];
    for (int i = 0; i < tokens.length; i++) {
      if (!ids.get(i).isIntegralNumber()) {
        throw new Refusal("input", "token ids must be whole numbers");
      }
      tokens[i] = ids.get(i).intValue();
    }
    return model.decode(tokens);
  }
}
