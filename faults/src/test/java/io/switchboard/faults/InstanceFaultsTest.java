package io.switchboard.faults;

import static io.switchboard.faults.Cluster.JSON;
import static io.switchboard.faults.Cluster.eventually;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.switchboard.fakeupstream.FakeUpstream;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A managed instance whose process crashes: it is restarted per its policy, the requests it was
 * answering end with a clear error, and nothing of the crashed process is left running.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class InstanceFaultsTest {

  @RegisterExtension
  final Cluster cluster = new Cluster();

  /**
   * The instance is a shell that starts a second process and then becomes the model server, as
   * wrappers around model servers do: a crash of the server must not leave the other behind.
   */
  private Path wrapperScript() throws Exception {
    Path script = cluster.dataDir.resolve("fake-llama-server.sh");
    Files.writeString(script, "#!/bin/sh\nsleep 600 &\nexec '" + Cluster.JAVA + "' -Xmx128m -cp '" + System.getProperty("java.class.path")
        + "' " + FakeUpstream.class.getName() + " \"$@\" --tokens 100 --interval-ms 50\n");
    script.toFile().setExecutable(true);
    return script;
  }

  private JsonNode instance(Cluster.Server server, String name) throws Exception {
    return JSON.readTree(cluster.get(server, "/api/v1/instances/" + name).body());
  }

  private static List<ProcessHandle> family(long pid) {
    ProcessHandle root = ProcessHandle.of(pid).orElseThrow();
    List<ProcessHandle> all = new ArrayList<>(root.descendants().toList());
    all.add(root);
    return all;
  }

  @Test
  void aCrashedInstanceIsRestartedItsRequestsFailClearlyAndNothingIsLeftBehind() throws Exception {
    Cluster.Server server = cluster.server();
    HttpResponse<String> created = cluster.send(server, "POST", "/api/v1/instances/crashy",
        "{\"model\":\"m.gguf\",\"command_override\":\"" + wrapperScript() + "\",\"auto_restart\":true,\"restart_delay\":\"1s\"}");
    JsonNode first = JSON.readTree(created.body());
    assertEquals("running", first.path("status").asText(), created.body());
    long firstPid = first.path("pid").asLong();
    List<ProcessHandle> crashed = family(firstPid);
    assertTrue(crashed.size() >= 2, "the server and the wrapper's sleep: " + crashed);

    List<Tally.Reading> streams = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      streams.add(new Tally.Reading(cluster.http.send(cluster.chat(server, "crashy", true), HttpResponse.BodyHandlers.ofInputStream())));
    }
    eventually("every stream has reached its client", () -> streams.stream().allMatch(s -> s.events >= 3));
    long killed = System.nanoTime();
    new ProcessBuilder("kill", "-KILL", Long.toString(firstPid)).start().waitFor();
    Tally tally = Tally.ofReadings(streams, 20);
    eventually("the instance is running again", () -> {
      try {
        JsonNode now = instance(server, "crashy");
        return now.path("status").asText().equals("running") && now.path("pid").asLong() != firstPid;
      } catch (Exception e) {
        return false;
      }
    });
    long recovered = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - killed);
    HttpResponse<String> after = cluster.http.send(cluster.chat(server, "crashy", false), HttpResponse.BodyHandlers.ofString());
    tally.sent++;
    tally.count(Tally.judge(after));
    Figures.fault(tally.row("instance process SIGKILL mid-stream", recovered,
        "auto_restart with restart_delay 1 s; 3 streams in flight end with an error event, 1 request after the restart; recovery: kill to running"));

    assertEquals(0, tally.lost + tally.hung);
    assertEquals(3, tally.failedClearly, "the streams in flight ended with an error event");
    assertEquals(200, after.statusCode(), after.body());
    JsonNode restarted = instance(server, "crashy");
    assertEquals(1, restarted.path("restarts").asInt(), restarted.toString());
    assertNotEquals(firstPid, restarted.path("pid").asLong());
    eventually("nothing of the crashed process is left: " + crashed, () -> crashed.stream().noneMatch(ProcessHandle::isAlive));

    List<ProcessHandle> running = family(restarted.path("pid").asLong());
    server.child().terminate();
    assertTrue(server.child().process.waitFor(30, TimeUnit.SECONDS), "the server exited");
    assertEquals(0, server.child().process.exitValue());
    eventually("no process of the instance is left after the server's SIGTERM", () -> running.stream().noneMatch(ProcessHandle::isAlive));
  }
}
