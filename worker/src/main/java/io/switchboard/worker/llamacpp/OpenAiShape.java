package io.switchboard.worker.llamacpp;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.switchboard.protocol.Json;
import java.util.ArrayList;
import java.util.List;

/** The OpenAI shapes of one request's answer and stream chunks: chat completions or completions. */
record OpenAiShape(String id, String model, long created, boolean chat) {

  /** Arguments of a streamed tool call go out in pieces of this many characters, as OpenAI's do. */
  private static final int ARGUMENT_PIECE = 24;

  /** One choice, whole: its text (chat content, or a completion's text) and calls. */
  record Choice(int index, String text, List<ToolCalling.Call> calls, String finish) {}

  private ObjectNode base(String object) {
    return Json.MAPPER.createObjectNode().put("id", id).put("object", object).put("created", created).put("model", model);
  }

  private ObjectNode chunk() {
    return base(chat ? "chat.completion.chunk" : "text_completion");
  }

  String roleChunk(int index) {
    ObjectNode chunk = chunk();
    ObjectNode choice = chunk.putArray("choices").addObject().put("index", index);
    choice.putObject("delta").put("role", "assistant").put("content", "");
    choice.putNull("logprobs").putNull("finish_reason");
    return sse(chunk);
  }

  /** A piece of text. */
  String textChunk(int index, String text) {
    ObjectNode chunk = chunk();
    ObjectNode choice = chunk.putArray("choices").addObject().put("index", index);
    if (chat) {
      choice.putObject("delta").put("content", text);
    } else {
      choice.put("text", text);
    }
    choice.putNull("logprobs").putNull("finish_reason");
    return sse(chunk);
  }

  /** A call as OpenAI streams it: id and name first, then the arguments in pieces. */
  List<String> toolCallChunks(int index, List<ToolCalling.Call> calls) {
    List<String> chunks = new ArrayList<>();
    for (int i = 0; i < calls.size(); i++) {
      ToolCalling.Call call = calls.get(i);
      ObjectNode first = chunk();
      ObjectNode head = toolDelta(first, index, i);
      head.put("id", call.id()).put("type", "function");
      head.putObject("function").put("name", call.name()).put("arguments", "");
      chunks.add(sse(first));
      String arguments = call.arguments();
      for (int at = 0; at < arguments.length(); at += ARGUMENT_PIECE) {
        ObjectNode piece = chunk();
        toolDelta(piece, index, i).putObject("function").put("arguments", arguments.substring(at, Math.min(arguments.length(), at + ARGUMENT_PIECE)));
        chunks.add(sse(piece));
      }
    }
    return chunks;
  }

  private static ObjectNode toolDelta(ObjectNode chunk, int index, int callIndex) {
    ObjectNode choice = chunk.putArray("choices").addObject().put("index", index);
    ObjectNode delta = choice.putObject("delta");
    choice.putNull("logprobs").putNull("finish_reason");
    return delta.putArray("tool_calls").addObject().put("index", callIndex);
  }

  String finishChunk(int index, String finish) {
    ObjectNode chunk = chunk();
    ObjectNode choice = chunk.putArray("choices").addObject().put("index", index);
    if (chat) {
      choice.putObject("delta");
    } else {
      choice.put("text", "");
    }
    choice.putNull("logprobs").put("finish_reason", finish);
    return sse(chunk);
  }

  String usageChunk(ObjectNode usage) {
    ObjectNode chunk = chunk();
    chunk.putArray("choices");
    chunk.set("usage", usage);
    return sse(chunk);
  }

  ObjectNode answer(List<Choice> choices, ObjectNode usage) {
    ObjectNode answer = base(chat ? "chat.completion" : "text_completion");
    ArrayNode list = answer.putArray("choices");
    for (Choice choice : choices) {
      ObjectNode item = list.addObject().put("index", choice.index());
      if (chat) {
        ObjectNode message = item.putObject("message").put("role", "assistant");
        if (choice.text() == null) {
          message.putNull("content");
        } else {
          message.put("content", choice.text());
        }
        message.putNull("refusal");
        if (!choice.calls().isEmpty()) {
          ArrayNode calls = message.putArray("tool_calls");
          choice.calls().forEach(call -> calls.addObject().put("id", call.id()).put("type", "function")
              .putObject("function").put("name", call.name()).put("arguments", call.arguments()));
        }
      } else {
        item.put("text", choice.text());
      }
      item.putNull("logprobs");
      item.put("finish_reason", choice.finish());
    }
    answer.set("usage", usage);
    return answer;
  }

  static String sse(ObjectNode chunk) {
    return "data: " + chunk + "\n\n";
  }
}
