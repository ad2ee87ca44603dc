package io.switchboard.server.instances;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.switchboard.server.Durations;
import io.switchboard.worker.instances.BackendType;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * What a user says about an instance: which model server to run with which options, and how
 * Switchboard looks after it. Parsed from and written as the JSON of the instances API.
 *
 * @param backendType the model server
 * @param backendOptions its options, turned into flags by {@link BackendType#command}
 * @param extraArgs arguments appended to its command line as they are
 * @param environment variables added to its environment
 * @param commandOverride the program to run instead of the backend's usual one, or null
 * @param port a fixed port, or null to take one from the configured range
 * @param autoStart start it when the server starts
 * @param onDemandStart start it when a request names it while it is stopped
 * @param idleTimeout stop it after this long without requests (zero: never)
 * @param autoRestart start it again when it crashes
 * @param maxRestarts how many crashes in a row are restarted
 * @param restartDelay the wait before the first restart; it doubles with each further one
 * @param maxConcurrency how many requests it is given at once; the rest wait in the router's queue
 */
public record InstanceConfig(
    BackendType backendType,
    ObjectNode backendOptions,
    List<String> extraArgs,
    Map<String, String> environment,
    String commandOverride,
    Integer port,
    boolean autoStart,
    boolean onDemandStart,
    Duration idleTimeout,
    boolean autoRestart,
    int maxRestarts,
    Duration restartDelay,
    int maxConcurrency) {

  private static final Set<String> FIELDS = Set.of("backend_type", "backend_options", "model", "extra_args", "environment",
      "command_override", "port", "auto_start", "on_demand_start", "idle_timeout", "auto_restart", "max_restarts",
      "restart_delay", "max_concurrency");

  /**
   * Reads a config; {@code model} at the top level is short for {@code backend_options.model}.
   *
   * @throws IllegalArgumentException saying which field is wrong and why
   */
  public static InstanceConfig parse(JsonNode json) {
    if (json == null || !json.isObject()) {
      throw new IllegalArgumentException("the body must be a JSON object of instance options");
    }
    for (Iterator<String> names = json.fieldNames(); names.hasNext(); ) {
      String name = names.next();
      if (!FIELDS.contains(name)) {
        throw new IllegalArgumentException("unknown field '" + name + "'; the fields are " + new TreeSet<>(FIELDS));
      }
    }
    String typeName = text(json, "backend_type", "llama_cpp");
    BackendType type = BackendType.of(typeName).orElseThrow(() -> new IllegalArgumentException(
        "unknown backend_type '" + typeName + "'; use llama_cpp, vllm or mlx_lm"));
    JsonNode optionsNode = json.get("backend_options");
    if (optionsNode != null && !optionsNode.isNull() && !optionsNode.isObject()) {
      throw new IllegalArgumentException("backend_options must be an object");
    }
    // The model goes first, so that it leads the command line.
    ObjectNode options = JsonNodeFactory.instance.objectNode();
    if (json.hasNonNull("model")) {
      options.put("model", text(json, "model", null));
    }
    if (optionsNode != null && optionsNode.isObject()) {
      optionsNode.fields().forEachRemaining(option -> {
        if (!options.has(option.getKey())) {
          options.set(option.getKey(), option.getValue().deepCopy());
        }
      });
    }
    String problem = BackendType.checkOptions(options);
    if (problem != null) {
      throw new IllegalArgumentException(problem);
    }
    Integer port = json.hasNonNull("port") ? integer(json, "port", 0) : null;
    if (port != null && (port < 1 || port > 65535)) {
      throw new IllegalArgumentException("port must be between 1 and 65535, got " + port);
    }
    int maxRestarts = integer(json, "max_restarts", 3);
    int maxConcurrency = integer(json, "max_concurrency", 32);
    if (maxRestarts < 0 || maxConcurrency < 1) {
      throw new IllegalArgumentException("max_restarts must be 0 or more and max_concurrency 1 or more");
    }
    return new InstanceConfig(type, options, strings(json, "extra_args"), environment(json), text(json, "command_override", null),
        port, bool(json, "auto_start", false), bool(json, "on_demand_start", true),
        duration(json, "idle_timeout", Duration.ZERO, Duration.ofMinutes(1)), bool(json, "auto_restart", false), maxRestarts,
        duration(json, "restart_delay", Duration.ofSeconds(5), Duration.ofSeconds(1)), maxConcurrency);
  }

  /** The config as the API shows it and the database keeps it; {@link #parse} reads it back. */
  public ObjectNode toJson() {
    ObjectNode json = JsonNodeFactory.instance.objectNode();
    json.put("backend_type", backendType.id());
    json.set("backend_options", backendOptions.deepCopy());
    extraArgs.forEach(json.putArray("extra_args")::add);
    ObjectNode env = json.putObject("environment");
    environment.forEach(env::put);
    if (commandOverride != null) {
      json.put("command_override", commandOverride);
    }
    if (port != null) {
      json.put("port", port);
    }
    json.put("auto_start", autoStart).put("on_demand_start", onDemandStart)
        .put("idle_timeout", Durations.format(idleTimeout))
        .put("auto_restart", autoRestart).put("max_restarts", maxRestarts)
        .put("restart_delay", Durations.format(restartDelay))
        .put("max_concurrency", maxConcurrency);
    return json;
  }

  private static String text(JsonNode json, String field, String otherwise) {
    JsonNode value = json.get(field);
    if (value == null || value.isNull()) {
      return otherwise;
    }
    if (!value.isTextual() || value.asText().isBlank()) {
      throw new IllegalArgumentException(field + " must be a non-empty string");
    }
    return value.asText();
  }

  private static boolean bool(JsonNode json, String field, boolean otherwise) {
    JsonNode value = json.get(field);
    if (value == null || value.isNull()) {
      return otherwise;
    }
    if (!value.isBoolean()) {
      throw new IllegalArgumentException(field + " must be true or false");
    }
    return value.booleanValue();
  }

  private static int integer(JsonNode json, String field, int otherwise) {
    JsonNode value = json.get(field);
    if (value == null || value.isNull()) {
      return otherwise;
    }
    if (!value.canConvertToInt() || !value.isIntegralNumber()) {
      throw new IllegalArgumentException(field + " must be a whole number");
    }
    return value.intValue();
  }

  /** A duration string ({@code 90s}, {@code 30m}), or a number of {@code unit}s as llamactl writes them. */
  private static Duration duration(JsonNode json, String field, Duration otherwise, Duration unit) {
    JsonNode value = json.get(field);
    if (value == null || value.isNull()) {
      return otherwise;
    }
    Duration parsed;
    try {
      parsed = value.isNumber() ? Duration.ofMillis((long) (value.doubleValue() * unit.toMillis())) : Durations.parse(value.asText());
    } catch (RuntimeException e) {
      throw new IllegalArgumentException(field + ": " + e.getMessage());
    }
    if (parsed.isNegative()) {
      throw new IllegalArgumentException(field + " must not be negative");
    }
    return parsed;
  }

  private static List<String> strings(JsonNode json, String field) {
    JsonNode value = json.get(field);
    List<String> list = new ArrayList<>();
    if (value == null || value.isNull()) {
      return list;
    }
    if (!value.isArray()) {
      throw new IllegalArgumentException(field + " must be an array of strings");
    }
    value.forEach(item -> {
      if (!item.isValueNode() || item.isNull()) {
        throw new IllegalArgumentException(field + " must be an array of strings");
      }
      list.add(item.asText());
    });
    return List.copyOf(list);
  }

  private static Map<String, String> environment(JsonNode json) {
    JsonNode value = json.get("environment");
    Map<String, String> env = new LinkedHashMap<>();
    if (value == null || value.isNull()) {
      return env;
    }
    if (!value.isObject()) {
      throw new IllegalArgumentException("environment must be an object of names to values");
    }
    value.fields().forEachRemaining(e -> {
      if (!e.getKey().matches("[A-Za-z_][A-Za-z0-9_]*") || !e.getValue().isValueNode() || e.getValue().isNull()) {
        throw new IllegalArgumentException("environment: '" + e.getKey() + "' must be a variable name with a string value");
      }
      env.put(e.getKey(), e.getValue().asText());
    });
    return Map.copyOf(env);
  }
}
