package io.switchboard.cli;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import java.lang.reflect.Field;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Map;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * A command's flags as the {@link ConfigLoader} takes them: each option given goes under its config
 * key, which is its long name in snake_case ({@code --data-dir} is {@code data_dir}) unless
 * {@link Key} names another. Then the loader lays flags over environment variables over the file
 * over defaults, for every command the same way.
 */
final class Flags {

  /** The config key of an option whose name is not its key ({@code --server} sets {@code server_url}). */
  @Retention(RetentionPolicy.RUNTIME)
  @Target(ElementType.FIELD)
  @interface Key {
    String value();
  }

  /** An option the command turns into config itself; it is not passed on as it is. */
  @Retention(RetentionPolicy.RUNTIME)
  @Target(ElementType.FIELD)
  @interface Own {}

  private Flags() {}

  /**
   * Loads the command's settings: its flags (and {@code extra}, what it made of its {@link Own}
   * ones), then the environment, then the YAML file given by {@code --config} or {@code CONFIG_FILE}.
   */
  static <T extends Record> T load(Class<T> type, Object command, Path configFlag, Map<String, String> env, Map<String, Object> extra) {
    Map<String, Object> flags = of(command);
    flags.putAll(extra);
    Path file = configFlag != null ? configFlag : env.get("CONFIG_FILE") == null ? null : Path.of(env.get("CONFIG_FILE"));
    return new ConfigLoader(env).load(type, file, flags);
  }

  /** The options given to {@code command} (and its mixins), by config key. */
  static Map<String, Object> of(Object command) {
    Map<String, Object> flags = new HashMap<>();
    for (Field field : command.getClass().getDeclaredFields()) {
      Object value = read(field, command);
      if (field.isAnnotationPresent(Mixin.class) && value != null) {
        flags.putAll(of(value));
      } else if (value != null && !field.isAnnotationPresent(Own.class) && key(field) != null) {
        flags.put(key(field), value instanceof Path path ? path.toString() : value);
      }
    }
    return flags;
  }

  private static String key(Field field) {
    Key key = field.getAnnotation(Key.class);
    if (key != null) {
      return key.value();
    }
    Option option = field.getAnnotation(Option.class);
    if (option == null || field.isAnnotationPresent(Parameters.class) || Arrays.asList(option.names()).contains("--config")) {
      return null;
    }
    String longest = Arrays.stream(option.names()).max(Comparator.comparingInt(String::length)).orElseThrow();
    return longest.replaceFirst("^-+", "").replace('-', '_');
  }

  private static Object read(Field field, Object command) {
    try {
      field.setAccessible(true);
      return field.get(command);
    } catch (IllegalAccessException e) {
      throw new IllegalStateException("cannot read the option " + field.getName(), e);
    }
  }
}
