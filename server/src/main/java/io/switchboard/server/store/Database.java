package io.switchboard.server.store;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import io.switchboard.vertx.Blocking;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.nio.file.Path;
import java.sql.SQLException;
import java.sql.SQLNonTransientConnectionException;
import java.sql.SQLRecoverableException;
import java.sql.SQLTransientConnectionException;
import org.flywaydb.core.Flyway;
import org.jdbi.v3.core.HandleCallback;
import org.jdbi.v3.core.Jdbi;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The server's database: a SQLite file in the data directory by default, PostgreSQL when a
 * {@code jdbc:postgresql:} URL is configured. The schema is migrated by Flyway at open, from
 * {@code db/migration}, in SQL that both engines run.
 */
public final class Database implements AutoCloseable {

  private static final Logger log = LoggerFactory.getLogger(Database.class);

  private final Vertx vertx;
  private final HikariDataSource dataSource;
  private final Jdbi jdbi;

  private Database(Vertx vertx, HikariDataSource dataSource) {
    this.vertx = vertx;
    this.dataSource = dataSource;
    this.jdbi = Jdbi.create(dataSource);
  }

  /**
   * Opens and migrates the database. Blocks: call it from a thread that may.
   *
   * @param vertx where the futures of {@link #read} and {@link #tx} complete
   * @param url a JDBC URL, or null for {@code switchboard.db} in {@code dataDir}
   */
  public static Database open(Vertx vertx, String url, Path dataDir) {
    HikariConfig config = new HikariConfig();
    String jdbcUrl = url != null ? url : "jdbc:sqlite:" + dataDir.resolve("switchboard.db").toAbsolutePath();
    config.setJdbcUrl(jdbcUrl);
    config.setPoolName("switchboard-db");
    if (jdbcUrl.startsWith("jdbc:sqlite:")) {
      // One connection: SQLite takes one writer at a time, and a pool of one never sees SQLITE_BUSY.
      config.setMaximumPoolSize(1);
      config.addDataSourceProperty("journal_mode", "WAL");
      config.addDataSourceProperty("busy_timeout", "5000");
    } else {
      config.setMaximumPoolSize(8);
      // While the database restarts, a request waits this long for a connection and then answers
      // 503, instead of Hikari's default of 30 s.
      config.setConnectionTimeout(5_000);
    }
    HikariDataSource dataSource = null;
    try {
      dataSource = new HikariDataSource(config);
      Flyway flyway = Flyway.configure().dataSource(dataSource).locations("classpath:db/migration").load();
      flyway.migrate();
      log.info("database {} ready at schema version {}", redact(jdbcUrl), flyway.info().current().getVersion());
    } catch (RuntimeException e) {
      if (dataSource != null) {
        dataSource.close();
      }
      throw new IllegalStateException("cannot open database " + redact(jdbcUrl) + " (database_url): " + e.getMessage(), e);
    }
    return new Database(vertx, dataSource);
  }

  /**
   * Runs SQL that reads, off the event loop (see {@link Blocking}); the future completes on the
   * caller's context. Fails with what {@link #unreachable} recognises while the database is down.
   */
  public <T> Future<T> read(HandleCallback<T, Exception> sql) {
    return Blocking.call(vertx, () -> jdbi.withHandle(sql));
  }

  /** Runs SQL that writes, in one transaction: all of it is kept or none. As {@link #read}, off the event loop. */
  public <T> Future<T> tx(HandleCallback<T, Exception> sql) {
    return Blocking.call(vertx, () -> jdbi.inTransaction(sql));
  }

  @Override
  public void close() {
    dataSource.close();
  }

  /**
   * Whether a failure means the database cannot be reached now (down, restarting, refusing
   * connections), as opposed to a fault in what was asked of it: the one a client should retry.
   */
  public static boolean unreachable(Throwable failure) {
    for (Throwable cause = failure; cause != null; cause = cause.getCause()) {
      if (cause instanceof SQLTransientConnectionException || cause instanceof SQLNonTransientConnectionException
          || cause instanceof SQLRecoverableException) {
        return true;
      }
      if (cause instanceof SQLException sql && sql.getSQLState() != null
          && (sql.getSQLState().startsWith("08") || sql.getSQLState().startsWith("57P"))) {
        return true;
      }
    }
    return false;
  }

  /** The URL without its password, for logs. */
  static String redact(String url) {
    return url.replaceAll("(?i)(password=)[^&;]*", "$1***").replaceAll("//([^:/@]+):[^@/]*@", "//$1:***@");
  }
}
