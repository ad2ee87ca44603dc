package io.switchboard.faults;

import static io.switchboard.faults.Cluster.JSON;
import static io.switchboard.faults.Cluster.eventually;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.switchboard.fakeupstream.FakeUpstream;
import java.net.ServerSocket;
import java.net.http.HttpResponse;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The server's database away: unreachable at start (a clear message and a non-zero exit), and
 * PostgreSQL restarting under load (503 meanwhile, served again without a restart of the server).
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class DatabaseFaultsTest {

  private static final String POSTGRES = "jdbc:postgresql://127.0.0.1:5432/test?user=postgres";

  @RegisterExtension
  final Cluster cluster = new Cluster();

  @Test
  void aDatabaseUnreachableAtStartIsSaidAndTheServerExits() throws Exception {
    int closed;
    try (ServerSocket free = new ServerSocket(0)) {
      closed = free.getLocalPort();
    }
    String url = "jdbc:postgresql://127.0.0.1:" + closed + "/test?user=postgres&password=hunter2";
    long started = System.nanoTime();
    Child server = cluster.launch("server", "--host", "127.0.0.1", "--port", "0", "--data-dir", cluster.dataDir.toString(),
        "--database-url", url);
    assertTrue(server.process.waitFor(30, TimeUnit.SECONDS), "the server gave up");
    long exitedMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started);
    String output = server.finalOutput();
    Tally tally = new Tally();
    tally.sent = 1;
    tally.failedClearly = server.process.exitValue() != 0 && output.contains("cannot open database") ? 1 : 0;
    tally.lost = 1 - tally.failedClearly;
    Figures.fault(tally.row("database unreachable at start", -1, "the server exits with status " + server.process.exitValue()
        + " after " + exitedMs + " ms, saying 'cannot open database' with the URL (password hidden)"));

    assertNotEquals(0, server.process.exitValue());
    assertTrue(output.contains("cannot open database jdbc:postgresql://127.0.0.1:" + closed + "/test"), output);
    assertTrue(!output.contains("hunter2"), "the password is never printed");
  }

  @Test
  void postgresRestartedUnderLoadAnswers503MeanwhileAndRecoversWithoutARestart() throws Exception {
    String schema = "switchboard_faults_" + Long.toHexString(ThreadLocalRandom.current().nextLong() & Long.MAX_VALUE);
    try (Connection sql = DriverManager.getConnection(POSTGRES); Statement s = sql.createStatement()) {
      s.execute("CREATE SCHEMA " + schema);
    } catch (Exception e) {
      assumeTrue(false, "no PostgreSQL at " + POSTGRES + ": " + e.getMessage());
    }
    try (TcpProxy postgres = new TcpProxy(cluster.vertx, 5432)) {
      FakeUpstream upstream = cluster.fake(FakeUpstream.Behavior.defaults().withModels("m"));
      Cluster.Server server = cluster.server("--database-url",
          "jdbc:postgresql://127.0.0.1:" + postgres.port() + "/test?user=postgres&currentSchema=" + schema);
      cluster.worker(server, "solo", upstream.baseUrl(), "--max-concurrency", "4");
      eventually("the worker serves m", () -> cluster.servedBy(server, "m", 1));
      HttpResponse<String> created = cluster.send(server, "POST", "/api/v1/instances/cfg",
          "{\"model\":\"m.gguf\",\"command_override\":\"/bin/false\"}");
      assertEquals(201, created.statusCode(), created.body());

      String guestToken = JSON.readTree(cluster.send(server, "POST", "/auth/guest-login", "").body()).path("access_token").asText();

      AtomicBoolean running = new AtomicBoolean(true);
      Tally writes = new Tally();
      Tally inference = new Tally();
      Tally signIns = new Tally();
      Tally guestChats = new Tally();
      AtomicInteger lastSaved = new AtomicInteger();
      AtomicLong firstSavedAfterUp = new AtomicLong();
      AtomicLong upAt = new AtomicLong(Long.MAX_VALUE);
      Thread writer = Thread.ofPlatform().start(() -> {
        for (int minutes = 1; running.get(); minutes++) {
          try {
            long sent = System.nanoTime();
            HttpResponse<String> put = cluster.send(server, "PUT", "/api/v1/instances/cfg", "{\"idle_timeout\":\"" + minutes + "m\"}");
            synchronized (writes) {
              writes.sent++;
              if (put.statusCode() == 200) {
                writes.succeeded++;
                lastSaved.set(minutes);
                if (sent > upAt.get()) {
                  firstSavedAfterUp.compareAndSet(0, System.nanoTime());
                }
              } else if (put.statusCode() == 503 && put.body().contains("database")) {
                writes.failedClearly++;
              } else {
                writes.lost++;
              }
            }
            Thread.sleep(50);
          } catch (java.net.http.HttpTimeoutException e) {
            synchronized (writes) {
              writes.sent++;
              writes.hung++;
            }
          } catch (Exception e) {
            return;
          }
        }
      });
      Thread reader = Thread.ofPlatform().start(() -> {
        while (running.get()) {
          try {
            HttpResponse<String> answer = cluster.http.send(cluster.chat(server, "m", false), HttpResponse.BodyHandlers.ofString());
            synchronized (inference) {
              inference.sent++;
              inference.count(Tally.judge(answer));
            }
          } catch (Exception e) {
            return;
          }
        }
      });

      Thread signer = Thread.ofPlatform().start(() -> {
        while (running.get()) {
          try {
            HttpResponse<String> login = cluster.send(server, "POST", "/auth/guest-login", "");
            synchronized (signIns) {
              signIns.sent++;
              if (login.statusCode() == 201 && login.body().contains("access_token")) {
                signIns.succeeded++;
              } else if (login.statusCode() == 503 && login.body().contains("database")) {
                signIns.failedClearly++;
              } else {
                signIns.lost++;
              }
            }
            Thread.sleep(100);
          } catch (Exception e) {
            return;
          }
        }
      });
      // A guest signed in before the outage chats through it: a token is checked in memory. Spaced
      // out to stay within the guest's 20 requests a minute.
      Thread guest = Thread.ofPlatform().start(() -> {
        while (running.get()) {
          try {
            HttpResponse<String> answer = cluster.http.send(cluster.chat(server, "m", false, "Authorization", "Bearer " + guestToken),
                HttpResponse.BodyHandlers.ofString());
            synchronized (guestChats) {
              guestChats.sent++;
              guestChats.count(Tally.judge(answer));
            }
            Thread.sleep(700);
          } catch (Exception e) {
            return;
          }
        }
      });

      Thread.sleep(2_000);
      postgres.down();
      Thread.sleep(4_000);
      upAt.set(System.nanoTime());
      postgres.up();
      eventually("a write succeeded after the database came back", () -> firstSavedAfterUp.get() != 0);
      long recovered = TimeUnit.NANOSECONDS.toMillis(firstSavedAfterUp.get() - upAt.get());
      Thread.sleep(1_000);
      running.set(false);
      writer.join(30_000);
      reader.join(30_000);
      signer.join(30_000);
      guest.join(30_000);

      synchronized (writes) {
        Figures.fault(writes.row("PostgreSQL restarted under load (writes)", recovered,
            "instance config PUTs in a loop; the database away 4 s (connections dropped, port refused); 503 database_unavailable meanwhile; "
                + "recovery: back up to the first saved write"));
      }
      synchronized (inference) {
        Figures.fault(inference.row("PostgreSQL restarted under load (inference)", 0,
            "chat completions in a loop beside the writes: they never touch the database"));
      }
      synchronized (signIns) {
        Figures.fault(signIns.row("PostgreSQL restarted under load (guest sign-ins)", -1,
            "POST /auth/guest-login in a loop beside the writes: 201 with tokens, or 503 database_unavailable while the database is away"));
      }
      synchronized (guestChats) {
        Figures.fault(guestChats.row("PostgreSQL restarted under load (a signed-in guest's chats)", 0,
            "a guest signed in before the outage chats through it with its JWT: tokens and rate limits are checked in memory"));
      }
      assertEquals(0, writes.lost + writes.hung, "every write was saved or refused with a clear 503");
      assertEquals(0, signIns.lost + signIns.hung, "every sign-in was made or refused with a clear 503: " + signIns.row("", 0, ""));
      assertTrue(signIns.failedClearly > 0 && signIns.succeeded > 0, "sign-ins were refused during the outage and made around it");
      assertEquals(guestChats.sent, guestChats.succeeded, "a signed-in guest chatted through the outage");
      assertTrue(writes.failedClearly > 0, "the outage was seen");
      assertEquals(inference.sent, inference.succeeded, "inference went on through the outage");
      String saved = JSON.readTree(cluster.get(server, "/api/v1/instances/cfg").body()).at("/options/idle_timeout").asText();
      assertEquals(lastSaved.get() + "m", saved, "the last write that was answered 200 is the one kept");
    } finally {
      try (Connection sql = DriverManager.getConnection(POSTGRES); Statement s = sql.createStatement()) {
        s.execute("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
      }
    }
  }
}
