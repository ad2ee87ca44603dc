package io.switchboard.worker.llamacpp;

import com.fasterxml.jackson.databind.JsonNode;
import de.kherud.llama.LlamaModel;

/** OpenAI's {@code response_format} as a grammar that llama.cpp holds the output to. */
final class ResponseFormats {

  private ResponseFormats() {}

  /**
   * The grammar of {@code json_object} (any JSON object) or {@code json_schema} (the schema's), or
   * null for {@code text} and none.
   */
  static String grammar(JsonNode format, ToolCalling tools) {
    if (format == null || format.isNull()) {
      return null;
    }
    String type = format.path("type").asText();
    switch (type) {
      case "text" -> {
        return null;
      }
      case "json_object", "json_schema" -> {
        if (tools.offered()) {
          throw new Refusal("response_format", "a JSON response_format together with tools is not supported by the llama.cpp backend");
        }
        if (type.equals("json_object")) {
          return toGrammar("{\"type\":\"object\"}");
        }
        JsonNode schema = format.path("json_schema").get("schema");
        if (schema == null || !schema.isObject()) {
          throw new Refusal("response_format", "response_format.json_schema.schema must be a JSON schema object");
        }
        return toGrammar(schema.toString());
      }
      default -> throw new Refusal("response_format", "response_format.type must be text, json_object or json_schema");
    }
  }

  /**
   * llama.cpp's own translation of a JSON schema to a grammar; a schema it cannot translate is the
   * client's to fix. Its whitespace rule allows two newlines and twenty tabs or spaces wherever JSON
   * allows space, and a model can spend its whole budget there (a weak one does): here a space is
   * one blank or none, which changes no value.
   */
  static String toGrammar(String schema) {
    String grammar;
    try {
      grammar = LlamaModel.jsonSchemaToGrammar(schema);
    } catch (RuntimeException e) {
      throw new Refusal("response_format", "this JSON schema cannot be enforced: " + e.getMessage());
    }
    return grammar.replaceAll("(?m)^space ::= .*$", "space ::= | \" \"");
  }
}
