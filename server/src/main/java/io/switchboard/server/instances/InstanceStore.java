package io.switchboard.server.instances;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;
import org.jdbi.v3.core.Jdbi;

/** The instances table: each instance's name, creation time and config. */
final class InstanceStore {

  /** One stored instance. */
  record Row(String name, long created, InstanceConfig config) {}

  private final Jdbi jdbi;
  private final ObjectMapper json;

  InstanceStore(Jdbi jdbi, ObjectMapper json) {
    this.jdbi = jdbi;
    this.json = json;
  }

  List<Row> all() {
    return jdbi.withHandle(h -> h.createQuery("SELECT name, created, config FROM instances ORDER BY created, name")
        .map((rs, ctx) -> new Row(rs.getString("name"), rs.getLong("created"), read(rs.getString("config"))))
        .list());
  }

  void insert(Row row) {
    jdbi.useHandle(h -> h.createUpdate("INSERT INTO instances (name, created, config) VALUES (:name, :created, :config)")
        .bind("name", row.name()).bind("created", row.created()).bind("config", row.config().toJson().toString())
        .execute());
  }

  void update(String name, InstanceConfig config) {
    jdbi.useHandle(h -> h.createUpdate("UPDATE instances SET config = :config WHERE name = :name")
        .bind("name", name).bind("config", config.toJson().toString())
        .execute());
  }

  void delete(String name) {
    jdbi.useHandle(h -> h.createUpdate("DELETE FROM instances WHERE name = :name").bind("name", name).execute());
  }

  private InstanceConfig read(String text) {
    try {
      return InstanceConfig.parse(json.readTree(text));
    } catch (IOException e) {
      throw new UncheckedIOException("a stored instance config is not JSON", e);
    }
  }
}
