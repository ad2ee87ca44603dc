package io.switchboard.worker.llamacpp;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.switchboard.protocol.Json;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Tools for a model that llama.cpp runs. The tools are described in a system preamble that asks for
 * calls as {@code <tool_call>{"name": ..., "arguments": {...}}</tool_call>} (the Hermes and Qwen
 * format); earlier calls and tool results go into the conversation the same way. {@code tool_choice}
 * {@code required} or a named function is enforced with a grammar of the call, built from the
 * functions' parameter schemas; {@code auto} recognises a call in the output in the Hermes/Qwen
 * format, as a bare JSON object (Llama 3.x) or after {@code [TOOL_CALLS]} (Mistral).
 *
 * @param tools the functions offered
 * @param choice how the model may use them
 * @param named the function a named choice forces
 */
record ToolCalling(List<Function> tools, Choice choice, String named) {

  /** One function the model may call. */
  record Function(String name, String description, JsonNode parameters) {}

  /** One call the model made. */
  record Call(String id, String name, String arguments) {}

  enum Choice { NONE, AUTO, REQUIRED, NAMED }

  static final ToolCalling NONE = new ToolCalling(List.of(), Choice.NONE, null);

  private static final Pattern HERMES = Pattern.compile("<tool_call>\\s*(\\{.*?})\\s*</tool_call>", Pattern.DOTALL);
  private static final String MISTRAL = "[TOOL_CALLS]";

  static ToolCalling parse(JsonNode body) {
    JsonNode tools = body.get("tools");
    JsonNode choice = body.get("tool_choice");
    if (tools == null || tools.isNull() || tools.isArray() && tools.isEmpty()) {
      if (choice != null && !choice.isNull() && !"none".equals(choice.asText()) && !"auto".equals(choice.asText())) {
        throw new Refusal("tool_choice", "tool_choice needs tools");
      }
      return NONE;
    }
    if (!tools.isArray()) {
      throw new Refusal("tools", "tools must be an array of function tools");
    }
    List<Function> functions = new ArrayList<>();
    for (JsonNode tool : tools) {
      JsonNode function = tool.path("function");
      if (!"function".equals(tool.path("type").asText()) || !function.path("name").isTextual()) {
        throw new Refusal("tools", "each tool must be {\"type\": \"function\", \"function\": {\"name\": ...}}");
      }
      JsonNode parameters = function.get("parameters");
      if (parameters != null && !parameters.isNull() && !parameters.isObject()) {
        throw new Refusal("tools", "a function's parameters must be a JSON schema object");
      }
      functions.add(new Function(function.get("name").asText(), function.path("description").asText(""),
          parameters == null || parameters.isNull() ? JsonNodeFactory.instance.objectNode().put("type", "object") : parameters));
    }
    if (choice == null || choice.isNull() || "auto".equals(choice.asText())) {
      return new ToolCalling(functions, Choice.AUTO, null);
    }
    if ("none".equals(choice.asText())) {
      return new ToolCalling(functions, Choice.NONE, null);
    }
    if ("required".equals(choice.asText())) {
      return new ToolCalling(functions, Choice.REQUIRED, null);
    }
    String name = choice.path("function").path("name").asText(null);
    if (!"function".equals(choice.path("type").asText()) || name == null) {
      throw new Refusal("tool_choice", "tool_choice must be none, auto, required or {\"type\": \"function\", \"function\": {\"name\": ...}}");
    }
    if (functions.stream().noneMatch(f -> f.name().equals(name))) {
      throw new Refusal("tool_choice", "tool_choice names '" + name + "', which is not among the tools");
    }
    return new ToolCalling(functions, Choice.NAMED, name);
  }

  /** Whether the model is told of tools at all. */
  boolean offered() {
    return choice != Choice.NONE;
  }

  /** Whether the answer must be a call, held to a grammar. */
  boolean forced() {
    return choice == Choice.REQUIRED || choice == Choice.NAMED;
  }

  /** The grammar of one call: {@code {"name": <a function>, "arguments": <its parameters>}}. */
  String grammar() {
    ArrayNode options = JsonNodeFactory.instance.arrayNode();
    for (Function function : tools) {
      if (choice == Choice.NAMED && !function.name().equals(named)) {
        continue;
      }
      ObjectNode call = options.addObject().put("type", "object").put("additionalProperties", false);
      ObjectNode properties = call.putObject("properties");
      properties.putObject("name").put("const", function.name());
      properties.set("arguments", function.parameters());
      call.putArray("required").add("name").add("arguments");
    }
    ObjectNode schema = options.size() == 1 ? (ObjectNode) options.get(0) : JsonNodeFactory.instance.objectNode().set("anyOf", options);
    try {
      return ResponseFormats.toGrammar(schema.toString());
    } catch (Refusal e) {
      throw new Refusal("tools", "a function's parameters cannot be enforced as a grammar: " + e.getMessage());
    }
  }

  /** The system preamble that describes the tools and how to call them. */
  String preamble() {
    StringBuilder text = new StringBuilder("You can call these tools. To call one, answer with only "
        + "<tool_call>{\"name\": \"<tool name>\", \"arguments\": {<its arguments>}}</tool_call>\nTools:\n");
    for (Function function : tools) {
      text.append("- ").append(function.name());
      if (!function.description().isEmpty()) {
        text.append(": ").append(function.description());
      }
      text.append(" Parameters (JSON schema): ").append(function.parameters()).append('\n');
    }
    return text.toString();
  }

  /** An assistant message's earlier calls, as the model is asked to write them. */
  static String render(JsonNode toolCalls) {
    StringBuilder text = new StringBuilder();
    for (JsonNode call : toolCalls) {
      JsonNode function = call.path("function");
      ObjectNode written = JsonNodeFactory.instance.objectNode().put("name", function.path("name").asText());
      JsonNode arguments;
      try {
        arguments = Json.MAPPER.readTree(function.path("arguments").asText("{}"));
      } catch (IOException e) {
        arguments = function.path("arguments");
      }
      written.set("arguments", arguments);
      text.append("<tool_call>").append(written).append("</tool_call>");
    }
    return text.toString();
  }

  /** A tool's result, as the model reads it. */
  static String renderResult(String content) {
    return "<tool_response>\n" + content + "\n</tool_response>";
  }

  /**
   * The calls in what the model wrote, and the text before them: a forced call is the JSON object
   * itself; otherwise the formats named above, naming functions that were offered.
   */
  Parsed parse(String output) {
    if (forced()) {
      Call call = call(output.strip());
      return call == null ? new Parsed(output, List.of()) : new Parsed(null, List.of(call));
    }
    if (choice != Choice.AUTO) {
      return new Parsed(output, List.of());
    }
    List<Call> calls = new ArrayList<>();
    Matcher hermes = HERMES.matcher(output);
    int firstAt = -1;
    while (hermes.find()) {
      Call call = call(hermes.group(1));
      if (call != null) {
        calls.add(call);
        firstAt = firstAt < 0 ? hermes.start() : firstAt;
      }
    }
    if (!calls.isEmpty()) {
      String before = output.substring(0, firstAt).strip();
      return new Parsed(before.isEmpty() ? null : before, calls);
    }
    String trimmed = output.strip();
    if (trimmed.startsWith(MISTRAL)) {
      try {
        for (JsonNode item : Json.MAPPER.readTree(trimmed.substring(MISTRAL.length()))) {
          Call call = call(item.toString());
          if (call != null) {
            calls.add(call);
          }
        }
      } catch (IOException e) {
        return new Parsed(output, List.of());
      }
      return calls.isEmpty() ? new Parsed(output, List.of()) : new Parsed(null, calls);
    }
    Call bare = trimmed.startsWith("{") ? call(trimmed) : null;
    return bare == null ? new Parsed(output, List.of()) : new Parsed(null, List.of(bare));
  }

  /** What the model wrote, split into its text and its calls. */
  record Parsed(String content, List<Call> calls) {}

  /** A call object naming an offered function, with {@code arguments} or (Llama 3.x) {@code parameters}; else null. */
  private Call call(String json) {
    JsonNode node;
    try {
      node = Json.MAPPER.readTree(json);
    } catch (IOException e) {
      return null;
    }
    String name = node.path("name").asText(null);
    if (name == null || tools.stream().noneMatch(f -> f.name().equals(name))) {
      return null;
    }
    JsonNode arguments = node.has("arguments") ? node.get("arguments") : node.get("parameters");
    if (arguments == null || !arguments.isObject()) {
      return null;
    }
    return new Call(newId(), name, arguments.toString());
  }

  private static String newId() {
    String alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    StringBuilder id = new StringBuilder("call_");
    ThreadLocalRandom random = ThreadLocalRandom.current();
    for (int i = 0; i < 24; i++) {
      id.append(alphabet.charAt(random.nextInt(alphabet.length())));
    }
    return id.toString();
  }
}
