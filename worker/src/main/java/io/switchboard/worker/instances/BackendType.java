package io.switchboard.worker.instances;

import com.fasterxml.jackson.annotation.JsonValue;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.StreamSupport;

/**
 * The model servers Switchboard can run, and how each is started and probed. Backend options are a
 * JSON object whose snake_case keys become the server's flags: {@code "ctx_size": 4096} is
 * {@code --ctx-size 4096}, {@code true} a bare flag, {@code false} nothing, an array a repeated flag.
 */
public enum BackendType {
  /** llama.cpp's {@code llama-server}; the model is {@code --model PATH}. */
  LLAMA_CPP("llama_cpp", List.of("llama-server"), "/health", false),
  /** vLLM's {@code vllm serve MODEL}; the model is positional. */
  VLLM("vllm", List.of("vllm", "serve"), "/health", true),
  /** Apple MLX's {@code mlx_lm.server}; the model is {@code --model PATH}. */
  MLX_LM("mlx_lm", List.of("mlx_lm.server"), "/v1/models", false);

  private final String id;
  private final List<String> defaultCommand;
  private final String healthPath;
  private final boolean modelPositional;

  BackendType(String id, List<String> defaultCommand, String healthPath, boolean modelPositional) {
    this.id = id;
    this.defaultCommand = defaultCommand;
    this.healthPath = healthPath;
    this.modelPositional = modelPositional;
  }

  /** The name in instance configs: {@code llama_cpp}, {@code vllm}, {@code mlx_lm}; JSON reads and writes it. */
  @JsonValue
  public String id() {
    return id;
  }

  /** The path that answers 200 once the server can take requests. */
  public String healthPath() {
    return healthPath;
  }

  public static Optional<BackendType> of(String id) {
    return Arrays.stream(values()).filter(type -> type.id.equals(id)).findFirst();
  }

  /**
   * The command line that starts this backend.
   *
   * @param executable the program to run instead of the default ({@code llama-server}, {@code vllm}, ...), or null
   * @param options the backend options; checked by {@link #checkOptions}
   * @param extraArgs arguments appended as they are
   * @param port the port it must listen on (always on 127.0.0.1, behind Switchboard)
   * @param servedName the model name clients use; vLLM checks it against {@code --served-model-name}, which it defaults to
   */
  public List<String> command(String executable, ObjectNode options, List<String> extraArgs, int port, String servedName) {
    List<String> argv = new ArrayList<>();
    if (executable != null) {
      argv.add(executable);
      argv.addAll(defaultCommand.subList(1, defaultCommand.size()));
    } else {
      argv.addAll(defaultCommand);
    }
    JsonNode model = options.get("model");
    if (modelPositional && model != null) {
      argv.add(model.asText());
    }
    for (Iterator<Map.Entry<String, JsonNode>> it = options.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> option = it.next();
      if (modelPositional && option.getKey().equals("model")) {
        continue;
      }
      String flag = "--" + option.getKey().replace('_', '-');
      JsonNode value = option.getValue();
      if (value.isArray()) {
        value.forEach(item -> {
          argv.add(flag);
          argv.add(item.asText());
        });
      } else if (value.isBoolean()) {
        if (value.booleanValue()) {
          argv.add(flag);
        }
      } else if (!value.isNull()) {
        argv.add(flag);
        argv.add(value.asText());
      }
    }
    if (this == VLLM && !options.has("served_model_name")) {
      argv.addAll(List.of("--served-model-name", servedName));
    }
    argv.addAll(List.of("--host", "127.0.0.1", "--port", Integer.toString(port)));
    argv.addAll(extraArgs);
    return argv;
  }

  /**
   * Checks backend options; returns what is wrong, or null. Values must be strings, numbers,
   * booleans or arrays of those, and the listen address is Switchboard's to choose.
   */
  public static String checkOptions(ObjectNode options) {
    for (Iterator<Map.Entry<String, JsonNode>> it = options.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> option = it.next();
      String key = option.getKey();
      if (!key.matches("[a-z0-9][a-z0-9_-]*")) {
        return "backend option '" + key + "' is not a snake_case option name";
      }
      if (key.equals("host") || key.equals("port")) {
        return "backend option '" + key + "' is set by Switchboard: instances listen on 127.0.0.1 (set the instance's 'port' to pick one)";
      }
      JsonNode value = option.getValue();
      boolean scalar = value.isValueNode();
      boolean scalarArray = value.isArray() && StreamSupport.stream(value.spliterator(), false).allMatch(JsonNode::isValueNode);
      if (!scalar && !scalarArray) {
        return "backend option '" + key + "' must be a string, number, boolean or an array of those";
      }
    }
    return null;
  }
}
