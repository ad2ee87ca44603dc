package io.switchboard.cli;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.DeserializationContext;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonDeserializer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.module.SimpleModule;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.switchboard.protocol.Json;
import io.switchboard.server.Durations;
import java.io.IOException;
import java.lang.reflect.RecordComponent;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Builds a configuration record from, in rising precedence: its defaults, a YAML file, environment
 * variables and command-line flags. YAML keys are the record's components in snake_case
 * ({@code request_timeout}); the environment variable for a key is the key in upper case
 * ({@code REQUEST_TIMEOUT}). Durations are written {@code 500ms}, {@code 30s}, {@code 5m}, {@code 1h}
 * or as seconds.
 */
public final class ConfigLoader {

  private final ObjectMapper mapper;
  private final ObjectMapper yaml;
  private final Map<String, String> env;

  public ConfigLoader(Map<String, String> env) {
    SimpleModule durations = new SimpleModule().addDeserializer(Duration.class, new DurationDeserializer());
    // A config file's unknown key is a typo to report, not a newer peer's field to skip.
    this.mapper = Json.MAPPER.rebuild()
        .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
        .disable(DeserializationFeature.READ_UNKNOWN_ENUM_VALUES_AS_NULL)
        .addModule(durations)
        .build();
    this.yaml = new ObjectMapper(new YAMLFactory());
    this.env = env;
  }

  /**
   * @param file the YAML file, or null for none
   * @param flags the flags given on the command line, by snake_case key; null values were not given
   * @throws IllegalArgumentException naming the key and the source when a value does not fit
   */
  public <T extends Record> T load(Class<T> type, Path file, Map<String, Object> flags) {
    ObjectNode tree = mapper.createObjectNode();
    if (file != null) {
      tree.setAll(readYaml(file));
    }
    for (RecordComponent component : type.getRecordComponents()) {
      String key = snake(component.getName());
      String value = env.get(key.toUpperCase());
      if (value != null && !value.isEmpty()) {
        tree.set(key, List.class.isAssignableFrom(component.getType())
            ? mapper.valueToTree(Arrays.stream(value.split(",")).map(String::trim).filter(s -> !s.isEmpty()).toList())
            : mapper.getNodeFactory().textNode(value));
      }
    }
    flags.forEach((key, value) -> {
      if (value != null) {
        tree.set(key, mapper.valueToTree(value));
      }
    });
    try {
      return mapper.treeToValue(tree, type);
    } catch (IOException e) {
      throw new IllegalArgumentException("invalid configuration: " + rootMessage(e), e);
    }
  }

  private ObjectNode readYaml(Path file) {
    if (!Files.isRegularFile(file)) {
      throw new IllegalArgumentException("config file " + file + " does not exist");
    }
    try {
      JsonNode node = yaml.readTree(file.toFile());
      if (node == null || node.isMissingNode() || node.isNull()) {
        return mapper.createObjectNode();
      }
      if (!node.isObject()) {
        throw new IllegalArgumentException("config file " + file + " must hold a mapping of keys to values");
      }
      return (ObjectNode) node;
    } catch (IOException e) {
      throw new IllegalArgumentException("cannot read config file " + file + ": " + e.getMessage(), e);
    }
  }

  private static String rootMessage(Throwable e) {
    Throwable cause = e;
    while (cause.getCause() != null && cause.getCause() != cause) {
      cause = cause.getCause();
    }
    String message = e.getMessage() == null ? "" : e.getMessage().lines().findFirst().orElse("");
    return cause == e ? message : message + " (" + cause.getMessage() + ")";
  }

  static String snake(String camel) {
    return camel.replaceAll("([a-z0-9])([A-Z])", "$1_$2").toLowerCase();
  }

  private static final class DurationDeserializer extends JsonDeserializer<Duration> {
    @Override
    public Duration deserialize(JsonParser parser, DeserializationContext context) throws IOException {
      return Durations.parse(parser.getValueAsString());
    }
  }
}
