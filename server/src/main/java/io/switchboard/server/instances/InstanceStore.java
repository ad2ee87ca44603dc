package io.switchboard.server.instances;

import io.switchboard.protocol.Json;
import io.switchboard.server.store.Database;
import io.vertx.core.Future;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;

/** The instances table: each instance's name, creation time and config. */
final class InstanceStore {

  /** One stored instance. */
  record Row(String name, long created, InstanceConfig config) {}

  private final Database database;

  InstanceStore(Database database) {
    this.database = database;
  }

  Future<List<Row>> all() {
    return database.read(h -> h.createQuery("SELECT name, created, config FROM instances ORDER BY created, name")
        .map((rs, ctx) -> new Row(rs.getString("name"), rs.getLong("created"), read(rs.getString("config"))))
        .list());
  }

  Future<Integer> insert(Row row) {
    return database.tx(h -> h.createUpdate("INSERT INTO instances (name, created, config) VALUES (:name, :created, :config)")
        .bind("name", row.name()).bind("created", row.created()).bind("config", row.config().toJson().toString())
        .execute());
  }

  Future<Integer> update(String name, InstanceConfig config) {
    return database.tx(h -> h.createUpdate("UPDATE instances SET config = :config WHERE name = :name")
        .bind("name", name).bind("config", config.toJson().toString())
        .execute());
  }

  Future<Integer> delete(String name) {
    return database.tx(h -> h.createUpdate("DELETE FROM instances WHERE name = :name").bind("name", name).execute());
  }

  private static InstanceConfig read(String text) {
    try {
      return InstanceConfig.parse(Json.MAPPER.readTree(text));
    } catch (IOException e) {
      throw new UncheckedIOException("a stored instance config is not JSON", e);
    }
  }
}
