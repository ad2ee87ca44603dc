package io.switchboard.server.instances;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectReader;
import com.fasterxml.jackson.databind.cfg.CoercionAction;
import com.fasterxml.jackson.databind.cfg.CoercionInputShape;
import com.fasterxml.jackson.databind.exc.InvalidFormatException;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import com.fasterxml.jackson.databind.type.LogicalType;
import io.switchboard.protocol.Json;
import io.switchboard.server.Durations;
import io.switchboard.worker.instances.BackendType;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeSet;
import java.util.stream.Collectors;

/**
 * What a user says about an instance: which model server to run with which options, and how
 * Switchboard looks after it. Read from and written as the JSON of the instances API ({@link Fields}).
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

  /**
   * The JSON of an instance's options, as the API takes and shows them: every field may be left out.
   * {@code model} at the top level is short for {@code backend_options.model}. The durations are a
   * string ({@code 90s}, {@code 30m}) or, as llamactl writes them, a number of minutes
   * ({@code idle_timeout}) or seconds ({@code restart_delay}).
   */
  public record Fields(BackendType backendType, ObjectNode backendOptions, String model, List<String> extraArgs,
      Map<String, String> environment, String commandOverride, Integer port, Boolean autoStart, Boolean onDemandStart,
      JsonNode idleTimeout, Boolean autoRestart, Integer maxRestarts, JsonNode restartDelay, Integer maxConcurrency) {}

  /** Jackson's mapper, stricter: an unknown field, a number as a flag or a string as a number is the user's mistake to hear about. */
  private static final ObjectReader READER = Json.MAPPER.rebuild()
      .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
      .enable(DeserializationFeature.FAIL_ON_NUMBERS_FOR_ENUMS)
      .disable(DeserializationFeature.READ_UNKNOWN_ENUM_VALUES_AS_NULL)
      .disable(DeserializationFeature.ACCEPT_FLOAT_AS_INT)
      .withCoercionConfig(LogicalType.Integer, c -> c.setCoercion(CoercionInputShape.String, CoercionAction.Fail))
      .withCoercionConfig(LogicalType.Boolean, c -> c.setCoercion(CoercionInputShape.String, CoercionAction.Fail)
          .setCoercion(CoercionInputShape.Integer, CoercionAction.Fail))
      .build()
      .readerFor(Fields.class);

  private static final List<String> FIELD_NAMES = Arrays.stream(Fields.class.getRecordComponents())
      .map(component -> Json.MAPPER.getPropertyNamingStrategy().nameForField(null, null, component.getName()))
      .toList();

  /**
   * Reads a config.
   *
   * @throws IllegalArgumentException saying which field is wrong and why
   */
  public static InstanceConfig parse(JsonNode json) {
    if (json == null || !json.isObject()) {
      throw new IllegalArgumentException("the body must be a JSON object of instance options");
    }
    Fields fields;
    try {
      fields = READER.readValue(json);
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException(explain(e), e);
    } catch (java.io.IOException e) {
      throw new IllegalArgumentException(e.getMessage(), e);
    }
    return of(fields);
  }

  /** Checks what the fields say and fills in what they leave out. */
  static InstanceConfig of(Fields fields) {
    // The model goes first, so that it leads the command line.
    ObjectNode options = JsonNodeFactory.instance.objectNode();
    if (fields.model() != null) {
      options.put("model", nonBlank("model", fields.model()));
    }
    if (fields.backendOptions() != null) {
      fields.backendOptions().properties().forEach(option -> {
        if (!options.has(option.getKey())) {
          options.set(option.getKey(), option.getValue().deepCopy());
        }
      });
    }
    String problem = BackendType.checkOptions(options);
    if (problem != null) {
      throw new IllegalArgumentException(problem);
    }
    Integer port = fields.port();
    if (port != null && (port < 1 || port > 65535)) {
      throw new IllegalArgumentException("port must be between 1 and 65535, got " + port);
    }
    int maxRestarts = Objects.requireNonNullElse(fields.maxRestarts(), 3);
    int maxConcurrency = Objects.requireNonNullElse(fields.maxConcurrency(), 32);
    if (maxRestarts < 0 || maxConcurrency < 1) {
      throw new IllegalArgumentException("max_restarts must be 0 or more and max_concurrency 1 or more");
    }
    Map<String, String> environment = Objects.requireNonNullElse(fields.environment(), Map.of());
    environment.forEach((name, value) -> {
      if (!name.matches("[A-Za-z_][A-Za-z0-9_]*") || value == null) {
        throw new IllegalArgumentException("environment: '" + name + "' must be a variable name with a string value");
      }
    });
    List<String> extraArgs = Objects.requireNonNullElse(fields.extraArgs(), List.of());
    if (extraArgs.stream().anyMatch(Objects::isNull)) {
      throw new IllegalArgumentException("extra_args must be an array of strings");
    }
    return new InstanceConfig(Objects.requireNonNullElse(fields.backendType(), BackendType.LLAMA_CPP), options,
        List.copyOf(extraArgs), Map.copyOf(environment),
        fields.commandOverride() == null ? null : nonBlank("command_override", fields.commandOverride()), port,
        Objects.requireNonNullElse(fields.autoStart(), false), Objects.requireNonNullElse(fields.onDemandStart(), true),
        duration("idle_timeout", fields.idleTimeout(), Duration.ZERO, Duration.ofMinutes(1)),
        Objects.requireNonNullElse(fields.autoRestart(), false), maxRestarts,
        duration("restart_delay", fields.restartDelay(), Duration.ofSeconds(5), Duration.ofSeconds(1)), maxConcurrency);
  }

  /** The config as the API shows it and the database keeps it; {@link #parse} reads it back. */
  public ObjectNode toJson() {
    return Json.MAPPER.valueToTree(new Fields(backendType, backendOptions.deepCopy(), null, extraArgs, environment,
        commandOverride, port, autoStart, onDemandStart, TextNode.valueOf(Durations.format(idleTimeout)), autoRestart,
        maxRestarts, TextNode.valueOf(Durations.format(restartDelay)), maxConcurrency));
  }

  /** Jackson's complaint, as a user reads it: the field and what it must be. */
  private static String explain(JsonProcessingException e) {
    if (e instanceof UnrecognizedPropertyException unknown) {
      return "unknown field '" + unknown.getPropertyName() + "'; the fields are " + new TreeSet<>(FIELD_NAMES);
    }
    if (e instanceof InvalidFormatException invalid && invalid.getTargetType() == BackendType.class) {
      return "unknown backend_type '" + invalid.getValue() + "'; use "
          + Arrays.stream(BackendType.values()).map(BackendType::id).collect(Collectors.joining(", "));
    }
    if (e instanceof MismatchedInputException mismatch && !mismatch.getPath().isEmpty()) {
      String field = mismatch.getPath().getFirst().getFieldName();
      return field + " must be " + expected(mismatch.getTargetType());
    }
    return "the body is not valid instance options: " + e.getOriginalMessage();
  }

  private static String expected(Class<?> type) {
    if (type == null) {
      return "of another type";
    }
    if (type == Boolean.class || type == boolean.class) {
      return "true or false";
    }
    if (type == Integer.class || type == int.class) {
      return "a whole number";
    }
    if (type == String.class || List.class.isAssignableFrom(type)) {
      return List.class.isAssignableFrom(type) ? "an array of strings" : "a string";
    }
    if (Map.class.isAssignableFrom(type)) {
      return "an object of names to string values";
    }
    if (type == BackendType.class) {
      return "one of " + Arrays.stream(BackendType.values()).map(BackendType::id).collect(Collectors.joining(", "));
    }
    return "an object";
  }

  private static String nonBlank(String field, String value) {
    if (value.isBlank()) {
      throw new IllegalArgumentException(field + " must be a non-empty string");
    }
    return value;
  }

  /** A duration string ({@code 90s}, {@code 30m}), or a number of {@code unit}s as llamactl writes them. */
  private static Duration duration(String field, JsonNode value, Duration otherwise, Duration unit) {
    if (value == null || value.isNull()) {
      return otherwise;
    }
    Duration parsed;
    try {
      parsed = value.isNumber() ? Duration.ofMillis((long) (value.doubleValue() * unit.toMillis()))
          : value.isTextual() ? Durations.parse(value.asText()) : null;
    } catch (RuntimeException e) {
      throw new IllegalArgumentException(field + ": " + e.getMessage());
    }
    if (parsed == null) {
      throw new IllegalArgumentException(field + " must be a duration like \"90s\" or a number");
    }
    if (parsed.isNegative()) {
      throw new IllegalArgumentException(field + " must not be negative");
    }
    return parsed;
  }
}
