package io.switchboard.worker.llamacpp;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import de.kherud.llama.InferenceParameters;
import de.kherud.llama.LlamaIterator;
import de.kherud.llama.LlamaModel;
import de.kherud.llama.LlamaOutput;
import de.kherud.llama.Pair;
import io.switchboard.protocol.Json;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Runs one chat completion or completion on a llama.cpp model: each prompt {@code n} times, one
 * generation after the other, streamed token by token or answered whole. With tools offered a
 * choice is generated whole before it goes out, since only the whole output says whether it is a
 * call; a forced call, or a JSON format, is held to its grammar while it is generated.
 */
final class Completions {

  /** What a generation thread hands on: the request's answer, in order. */
  interface Out {
    void head(String contentType);

    void data(String text);

    void end();
  }

  private final LlamaModel model;
  private final GenerationRequest request;
  private final OpenAiShape shape;
  private final Out out;
  private final AtomicBoolean cancelled;
  private final AtomicReference<LlamaIterator> running;

  Completions(LlamaModel model, String name, GenerationRequest request, Out out, AtomicBoolean cancelled,
      AtomicReference<LlamaIterator> running) {
    this.model = model;
    this.request = request;
    this.out = out;
    this.cancelled = cancelled;
    this.running = running;
    this.shape = new OpenAiShape((request.chat() ? "chatcmpl-" : "cmpl-") + Long.toHexString(System.nanoTime()), name,
        System.currentTimeMillis() / 1000, request.chat());
  }

  /** One generation's output. */
  private record Generated(String text, int tokens, String finish) {}

  void run() {
    List<String> prompts = request.chat() ? List.of(chatPrompt()) : request.prompts();
    if (request.stream()) {
      out.head("text/event-stream");
    }
    List<OpenAiShape.Choice> choices = new ArrayList<>();
    int promptTokens = 0;
    int completionTokens = 0;
    for (int p = 0; p < prompts.size(); p++) {
      String prompt = prompts.get(p);
      promptTokens += model.encode(prompt).length + 1;
      for (int i = 0; i < request.n(); i++) {
        int index = p * request.n() + i;
        Generated generated = generate(prompt, index, i);
        if (generated == null) {
          return;
        }
        completionTokens += generated.tokens();
        choices.add(choice(index, prompt, generated));
      }
    }
    ObjectNode usage = Json.MAPPER.createObjectNode().put("prompt_tokens", promptTokens).put("completion_tokens", completionTokens)
        .put("total_tokens", promptTokens + completionTokens);
    if (request.stream()) {
      if (request.includeUsage()) {
        out.data(shape.usageChunk(usage));
      }
      out.data("data: [DONE]\n\n");
    } else {
      out.head("application/json");
      out.data(shape.answer(choices, usage).toString());
    }
    out.end();
  }

  /** The whole choice: its calls parsed out of the text where tools were offered. */
  private OpenAiShape.Choice choice(int index, String prompt, Generated generated) {
    String text = request.echo() ? prompt + generated.text() : generated.text();
    ToolCalling.Parsed parsed = request.tools().offered() ? request.tools().parse(text) : new ToolCalling.Parsed(text, List.of());
    String finish = parsed.calls().isEmpty() ? generated.finish() : "tool_calls";
    return new OpenAiShape.Choice(index, parsed.content(), parsed.calls(), finish);
  }

  /**
   * Generates one choice; streams it as it comes unless tools were offered. Null when the request
   * was cancelled meanwhile.
   */
  private Generated generate(String prompt, int index, int attempt) {
    InferenceParameters params = parameters(prompt, attempt);
    boolean streamTokens = request.stream() && !request.tools().offered();
    if (request.stream() && request.chat()) {
      out.data(shape.roleChunk(index));
    }
    if (streamTokens && request.echo()) {
      out.data(shape.textChunk(index, prompt));
    }
    StringBuilder text = new StringBuilder();
    int tokens = 0;
    LlamaIterator iterator = model.generate(params).iterator();
    running.set(iterator);
    if (cancelled.get()) {
      iterator.cancel();
      return null;
    }
    while (iterator.hasNext()) {
      LlamaOutput output = iterator.next();
      if (cancelled.get()) {
        iterator.cancel();
        return null;
      }
      if (output.text.isEmpty()) {
        continue;
      }
      tokens++;
      if (streamTokens) {
        out.data(shape.textChunk(index, output.text));
      }
      text.append(output.text);
      if (tokens >= request.maxTokens()) {
        iterator.cancel();
        break;
      }
    }
    // Ended by the model (its end token, a stop string, a grammar complete) or by the limit.
    String finish = tokens >= request.maxTokens() ? "length" : "stop";
    Generated generated = new Generated(text.toString(), tokens, finish);
    if (request.stream()) {
      OpenAiShape.Choice choice = choice(index, prompt, generated);
      if (!streamTokens) {
        streamWhole(index, choice);
      }
      out.data(shape.finishChunk(index, choice.finish()));
    }
    return generated;
  }

  /** A choice generated whole (tools were offered) goes out as calls, or as its text. */
  private void streamWhole(int index, OpenAiShape.Choice choice) {
    if (choice.text() != null && !choice.text().isEmpty()) {
      out.data(shape.textChunk(index, choice.text()));
    }
    if (!choice.calls().isEmpty()) {
      shape.toolCallChunks(index, choice.calls()).forEach(out::data);
    }
  }

  private InferenceParameters parameters(String prompt, int attempt) {
    // llama.cpp hands on no piece for a token that ends inside a UTF-8 character (up to four tokens
    // make one piece where a model writes bytes), so it is let run up to four times max_tokens and
    // the count of pieces stops it: a piece is the token a client counts.
    int max = request.maxTokens();
    InferenceParameters params = new InferenceParameters(prompt).setNPredict((int) Math.min(Integer.MAX_VALUE, 4L * max + 16));
    if (request.temperature() != null) {
      params.setTemperature(request.temperature());
    }
    if (request.topP() != null) {
      params.setTopP(request.topP());
    }
    if (request.topK() != null) {
      params.setTopK(request.topK());
    }
    if (request.minP() != null) {
      params.setMinP(request.minP());
    }
    if (request.seed() != null) {
      // Each of n choices its own seed, or n choices of one seed would be one choice n times.
      params.setSeed(request.seed() + attempt);
    }
    if (!request.stops().isEmpty()) {
      params.setStopStrings(request.stops().toArray(String[]::new));
    }
    if (request.presencePenalty() != null) {
      params.setPresencePenalty(request.presencePenalty());
    }
    if (request.frequencyPenalty() != null) {
      params.setFrequencyPenalty(request.frequencyPenalty());
    }
    if (!request.logitBias().isEmpty()) {
      params.setTokenIdBias(request.logitBias());
    }
    if (request.grammar() != null) {
      params.setGrammar(request.grammar());
    }
    return params;
  }

  /**
   * The prompt the model's own chat template makes of the messages. The template takes a system
   * text, then user and assistant turns: every system and developer message goes into the system
   * text (with the tools' preamble first), an assistant's calls are written as the model is asked to
   * write them, and a tool's result is a user turn.
   */
  private String chatPrompt() {
    StringBuilder system = new StringBuilder();
    if (request.tools().offered()) {
      system.append(request.tools().preamble());
    }
    List<Pair<String, String>> turns = new ArrayList<>();
    for (JsonNode message : request.messages()) {
      String text = text(message.get("content"));
      switch (message.path("role").asText()) {
        case "system", "developer" -> system.append(system.isEmpty() ? "" : "\n\n").append(text);
        case "assistant" -> turns.add(new Pair<>("assistant", text + ToolCalling.render(message.path("tool_calls"))));
        case "tool" -> turns.add(new Pair<>("user", ToolCalling.renderResult(text)));
        default -> turns.add(new Pair<>("user", text));
      }
    }
    return model.applyTemplate(new InferenceParameters("").setMessages(system.isEmpty() ? null : system.toString(), turns));
  }

  /** A message's text: a string, or its text parts; other parts (images, audio) are refused. */
  private static String text(JsonNode content) {
    if (content == null || content.isNull()) {
      return "";
    }
    if (content.isTextual()) {
      return content.asText();
    }
    StringBuilder text = new StringBuilder();
    for (JsonNode part : content) {
      if (!"text".equals(part.path("type").asText())) {
        throw new Refusal("messages", "content parts of type '" + part.path("type").asText() + "' are not supported by the llama.cpp backend");
      }
      text.append(part.path("text").asText(""));
    }
    return text.toString();
  }
}
