package io.switchboard.server.mcp;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.switchboard.protocol.Json;
import io.switchboard.server.store.Database;
import io.vertx.core.Future;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Collectors;

/** The admin's settings of MCP tools, by tool id. A tool without a row is enabled and unfiltered. */
final class ToolSettingsStore {

  /** One tool's settings; {@code disallowedKeywords} are regular expressions cut from its results. */
  record Settings(String toolId, boolean enabled, List<String> disallowedKeywords, long updated) {
    static Settings defaults(String toolId) {
      return new Settings(toolId, true, List.of(), 0);
    }
  }

  private static final ObjectMapper JSON = Json.MAPPER;

  private final Database database;

  ToolSettingsStore(Database database) {
    this.database = database;
  }

  Future<Map<String, Settings>> all() {
    return database.read(h -> h.createQuery("SELECT tool_id, enabled, filters, updated FROM mcp_tool_settings")
        .map((rs, ctx) -> new Settings(rs.getString("tool_id"), rs.getBoolean("enabled"), read(rs.getString("filters")),
            rs.getLong("updated")))
        .list()).map(rows -> rows.stream().collect(Collectors.toMap(Settings::toolId, Function.identity())));
  }

  Future<Settings> save(Settings settings) {
    String filters;
    try {
      filters = JSON.writeValueAsString(settings.disallowedKeywords());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return database.tx(h -> {
      h.createUpdate("DELETE FROM mcp_tool_settings WHERE tool_id = :id").bind("id", settings.toolId()).execute();
      h.createUpdate("INSERT INTO mcp_tool_settings (tool_id, enabled, filters, updated) VALUES (:id, :enabled, :filters, :updated)")
          .bind("id", settings.toolId()).bind("enabled", settings.enabled()).bind("filters", filters)
          .bind("updated", settings.updated()).execute();
      return settings;
    });
  }

  private static List<String> read(String json) {
    try {
      return JSON.readValue(json, new TypeReference<List<String>>() { });
    } catch (IOException e) {
      throw new UncheckedIOException("stored tool filters are not JSON", e);
    }
  }
}
