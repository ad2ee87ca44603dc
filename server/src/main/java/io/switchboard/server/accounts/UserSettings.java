package io.switchboard.server.accounts;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.switchboard.protocol.Json;
import java.util.Iterator;
import java.util.Set;

/**
 * A user's settings, in Jan's sections: {@code memory_config}, {@code profile_settings},
 * {@code advanced_settings}, {@code preferences}, and the flags {@code enable_trace} and
 * {@code enable_tools}. A PATCH replaces the sections it names and merges the keys of
 * {@code preferences} (the web app sends one preference at a time).
 */
final class UserSettings {

  private static final Set<String> SECTIONS = Set.of("memory_config", "profile_settings", "advanced_settings");
  private static final Set<String> FLAGS = Set.of("enable_trace", "enable_tools");
  private static final String PREFERENCES = "preferences";

  private UserSettings() {}

  /** What a user has before changing anything. */
  static ObjectNode defaults() {
    ObjectNode settings = Json.MAPPER.createObjectNode();
    settings.putObject("memory_config").put("enabled", true).put("observe_enabled", true).put("inject_user_core", true)
        .put("inject_semantic", true).put("inject_episodic", false).put("max_user_items", 3).put("max_project_items", 5)
        .put("max_episodic_items", 3).put("min_similarity", 0.75);
    settings.putObject("profile_settings").put("base_style", "Friendly").put("custom_instructions", "").put("nick_name", "")
        .put("occupation", "").put("more_about_you", "");
    settings.putObject("advanced_settings").put("web_search", false).put("code_enabled", false);
    settings.put("enable_trace", false).put("enable_tools", true);
    settings.putObject(PREFERENCES);
    return settings;
  }

  /**
   * {@code current} changed as {@code patch} says.
   *
   * @throws IllegalArgumentException naming the field that is not a setting, or of the wrong type
   */
  static ObjectNode patched(ObjectNode current, JsonNode patch) {
    if (patch == null || !patch.isObject()) {
      throw new IllegalArgumentException("the body must be a JSON object of settings");
    }
    ObjectNode next = current.deepCopy();
    for (Iterator<String> names = patch.fieldNames(); names.hasNext(); ) {
      String name = names.next();
      JsonNode value = patch.get(name);
      if (SECTIONS.contains(name)) {
        if (!value.isObject()) {
          throw new IllegalArgumentException(name + " must be an object");
        }
        next.set(name, value.deepCopy());
      } else if (FLAGS.contains(name)) {
        if (!value.isBoolean()) {
          throw new IllegalArgumentException(name + " must be true or false");
        }
        next.set(name, value);
      } else if (PREFERENCES.equals(name)) {
        if (!value.isObject()) {
          throw new IllegalArgumentException("preferences must be an object");
        }
        ((ObjectNode) next.withObjectProperty(PREFERENCES)).setAll((ObjectNode) value.deepCopy());
      } else {
        throw new IllegalArgumentException("unknown setting '" + name + "'; the settings are memory_config, profile_settings, "
            + "advanced_settings, preferences, enable_trace and enable_tools");
      }
    }
    return next;
  }
}
