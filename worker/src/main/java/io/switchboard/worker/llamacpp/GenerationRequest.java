package io.switchboard.worker.llamacpp;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A chat completion or completion request as this backend runs it: every parameter that changes
 * the answer read here, and refused ({@link Refusal}) when it cannot be honoured. Hints that change
 * nothing of the answer ({@code user}, {@code metadata}, {@code store}, {@code service_tier}) and
 * fields no OpenAI API knows pass without a word, as they do at llama-server.
 *
 * @param prompts a completion's prompts (one choice set each); empty for a chat
 * @param n choices per prompt
 * @param grammar a GBNF grammar the output must follow (a JSON format, a forced tool call), or null
 * @param tools the tools offered and how the model may use them; {@link ToolCalling#NONE} without
 */
record GenerationRequest(
    boolean chat,
    JsonNode messages,
    List<String> prompts,
    int maxTokens,
    Float temperature,
    Float topP,
    Integer topK,
    Float minP,
    Integer seed,
    List<String> stops,
    Float presencePenalty,
    Float frequencyPenalty,
    Map<Integer, Float> logitBias,
    int n,
    boolean echo,
    String grammar,
    ToolCalling tools,
    boolean stream,
    boolean includeUsage) {

  /** More choices than this in one request are refused: each is a whole generation. */
  static final int MAX_N = 16;

  /** Parameters of OpenAI's that this backend cannot honour, and what to use instead. */
  private static final Map<String, String> UNSUPPORTED = Map.of(
      "audio", "audio output is not supported by the llama.cpp backend",
      "prediction", "predicted outputs are not supported by the llama.cpp backend",
      "reasoning_effort", "reasoning_effort is not supported with this model",
      "web_search_options", "web search is not supported by the llama.cpp backend",
      "functions", "functions is deprecated and not supported here; send tools",
      "function_call", "function_call is deprecated and not supported here; send tool_choice",
      "suffix", "suffix (insertion) is not supported by the llama.cpp backend");

  private static final Set<String> ROLES = Set.of("system", "developer", "user", "assistant", "tool");

  static GenerationRequest parse(JsonNode body, boolean chat) {
    for (Map.Entry<String, String> unsupported : UNSUPPORTED.entrySet()) {
      if (body.hasNonNull(unsupported.getKey())) {
        throw new Refusal(unsupported.getKey(), unsupported.getValue());
      }
    }
    JsonNode modalities = body.get("modalities");
    if (modalities != null && !modalities.isNull()) {
      modalities.forEach(m -> {
        if (!"text".equals(m.asText())) {
          throw new Refusal("modalities", "only text output is supported by the llama.cpp backend");
        }
      });
    }
    JsonNode messages = null;
    List<String> prompts = List.of();
    if (chat) {
      messages = body.get("messages");
      if (messages == null || !messages.isArray() || messages.isEmpty()) {
        throw new Refusal("messages", "messages must be a non-empty array");
      }
      for (JsonNode message : messages) {
        if (!ROLES.contains(message.path("role").asText())) {
          throw new Refusal("messages", "unknown role '" + message.path("role").asText() + "'; use one of " + ROLES);
        }
      }
    } else {
      prompts = prompts(body.get("prompt"));
    }
    int maxTokens = integer(body, chat && body.has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens", 256, 1, Integer.MAX_VALUE);
    int n = integer(body, "n", 1, 1, MAX_N);
    if (body.hasNonNull("best_of") && body.get("best_of").asInt() != n && body.get("best_of").asInt() > 1) {
      throw new Refusal("best_of", "best_of other than n is not supported by the llama.cpp backend");
    }
    // java-llama.cpp 4.2.0 aborts the whole process when asked for token probabilities (n_probs):
    // log probabilities are refused until a build of it reports them safely.
    if (chat ? bool(body, "logprobs") : body.hasNonNull("logprobs")) {
      throw new Refusal("logprobs", "log probabilities are not available from the llama.cpp backend");
    }
    if (integer(body, "top_logprobs", 0, 0, 20) > 0) {
      throw new Refusal("top_logprobs", "log probabilities are not available from the llama.cpp backend");
    }
    boolean echo = !chat && bool(body, "echo");
    ToolCalling tools = chat ? ToolCalling.parse(body) : ToolCalling.NONE;
    if (!chat && (body.hasNonNull("tools") || body.hasNonNull("tool_choice"))) {
      throw new Refusal("tools", "tools are a chat completions parameter");
    }
    String grammar = ResponseFormats.grammar(body.get("response_format"), tools);
    if (tools.forced()) {
      grammar = tools.grammar();
    }
    boolean stream = bool(body, "stream");
    return new GenerationRequest(chat, messages, prompts, maxTokens, number(body, "temperature", 0, 2),
        number(body, "top_p", 0, 1), body.hasNonNull("top_k") ? integer(body, "top_k", 0, 0, Integer.MAX_VALUE) : null,
        number(body, "min_p", 0, 1), body.hasNonNull("seed") ? integer(body, "seed", 0, Integer.MIN_VALUE, Integer.MAX_VALUE) : null,
        stops(body.get("stop")), number(body, "presence_penalty", -2, 2), number(body, "frequency_penalty", -2, 2),
        logitBias(body.get("logit_bias")), n, echo, grammar, tools, stream,
        stream && body.path("stream_options").path("include_usage").asBoolean(false));
  }

  private static List<String> prompts(JsonNode prompt) {
    if (prompt == null || prompt.isNull()) {
      return List.of("");
    }
    if (prompt.isTextual()) {
      return List.of(prompt.asText());
    }
    if (prompt.isArray() && !prompt.isEmpty()) {
      List<String> prompts = new ArrayList<>();
      for (JsonNode item : prompt) {
        if (!item.isTextual()) {
          throw new Refusal("prompt", "prompt must be a string or an array of strings (token arrays are not supported here)");
        }
        prompts.add(item.asText());
      }
      return prompts;
    }
    throw new Refusal("prompt", "prompt must be a string or an array of strings");
  }

  private static List<String> stops(JsonNode stop) {
    List<String> stops = new ArrayList<>();
    if (stop == null || stop.isNull()) {
      return stops;
    }
    if (stop.isTextual()) {
      stops.add(stop.asText());
    } else if (stop.isArray() && stop.size() <= 4) {
      stop.forEach(s -> stops.add(s.asText()));
    } else {
      throw new Refusal("stop", "stop must be a string or an array of up to 4 strings");
    }
    return stops;
  }

  /** OpenAI's {@code logit_bias}: token ids (as strings) to a bias from -100 to 100. */
  private static Map<Integer, Float> logitBias(JsonNode bias) {
    Map<Integer, Float> byToken = new HashMap<>();
    if (bias == null || bias.isNull()) {
      return byToken;
    }
    if (!bias.isObject()) {
      throw new Refusal("logit_bias", "logit_bias must be an object of token ids to biases");
    }
    bias.properties().forEach(entry -> {
      int token;
      try {
        token = Integer.parseInt(entry.getKey());
      } catch (NumberFormatException e) {
        throw new Refusal("logit_bias", "logit_bias keys are token ids; got '" + entry.getKey() + "'");
      }
      double value = entry.getValue().asDouble(Double.NaN);
      if (!entry.getValue().isNumber() || value < -100 || value > 100) {
        throw new Refusal("logit_bias", "logit_bias values are numbers from -100 to 100");
      }
      byToken.put(token, (float) value);
    });
    return byToken;
  }

  private static boolean bool(JsonNode body, String field) {
    JsonNode value = body.get(field);
    if (value == null || value.isNull()) {
      return false;
    }
    if (!value.isBoolean()) {
      throw new Refusal(field, field + " must be true or false");
    }
    return value.booleanValue();
  }

  private static int integer(JsonNode body, String field, int otherwise, int min, int max) {
    JsonNode value = body.get(field);
    if (value == null || value.isNull()) {
      return otherwise;
    }
    if (!value.isIntegralNumber() || !value.canConvertToInt() || value.intValue() < min || value.intValue() > max) {
      throw new Refusal(field, field + " must be a whole number from " + min + (max == Integer.MAX_VALUE ? " up" : " to " + max));
    }
    return value.intValue();
  }

  private static Float number(JsonNode body, String field, double min, double max) {
    JsonNode value = body.get(field);
    if (value == null || value.isNull()) {
      return null;
    }
    if (!value.isNumber() || value.doubleValue() < min || value.doubleValue() > max) {
      throw new Refusal(field, field + " must be a number from " + min + " to " + max);
    }
    return value.floatValue();
  }
}
