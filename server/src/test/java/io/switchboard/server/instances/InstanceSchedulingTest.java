package io.switchboard.server.instances;

import static io.switchboard.server.instances.InstanceHarness.alive;
import static io.switchboard.server.instances.InstanceHarness.chat;
import static io.switchboard.server.instances.InstanceHarness.eventually;
import static io.switchboard.server.instances.InstanceHarness.json;
import static io.switchboard.server.instances.InstanceLifecycleTest.assertError;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** On-demand starts, the running limit with and without LRU eviction, idle stops, crashes, restarts of the server, keys. */
class InstanceSchedulingTest {

  private static String config(InstanceHarness hub, String extra) {
    return "{\"model\":\"m.gguf\",\"command_override\":\"" + hub.fakeLlamaServer() + "\"" + extra + "}";
  }

  @Test
  void aRequestStartsAStoppedInstanceOnlyWhenOnDemandStartIsOn() {
    try (InstanceHarness hub = InstanceHarness.start(InstanceHarness.settings(-1, true))) {
      hub.call("POST", "/api/v1/instances/lazy", config(hub, ""));
      hub.call("POST", "/api/v1/instances/strict", config(hub, ",\"on_demand_start\":false"));
      hub.call("POST", "/api/v1/instances/lazy/stop", null);
      hub.call("POST", "/api/v1/instances/strict/stop", null);

      HttpResponse<String> answer = hub.call("POST", "/v1/chat/completions", chat("lazy"));
      assertEquals(200, answer.statusCode(), answer.body());
      assertEquals("running", hub.status("lazy"));

      HttpResponse<String> refused = hub.call("POST", "/v1/chat/completions", chat("strict"));
      assertEquals(503, refused.statusCode());
      assertEquals("instance_not_running", json(refused).path("error").path("code").asText());
      assertEquals("stopped", hub.status("strict"));
    }
  }

  @Test
  void atTheRunningLimitAStartIsRefusedWithoutEviction() {
    try (InstanceHarness hub = InstanceHarness.start(InstanceHarness.settings(1, false))) {
      assertEquals("running", json(hub.call("POST", "/api/v1/instances/a", config(hub, ""))).path("status").asText());
      JsonNode b = json(hub.call("POST", "/api/v1/instances/b", config(hub, "")));
      assertEquals("stopped", b.path("status").asText(), b.toString());
      assertTrue(b.path("last_error").asText().contains("cannot start"), b.toString());
      assertError(hub.call("POST", "/api/v1/instances/b/start", null), 409, "cannot start");
      HttpResponse<String> onDemand = hub.call("POST", "/v1/chat/completions", chat("b"));
      assertEquals(409, onDemand.statusCode(), onDemand.body());
      assertEquals("running", hub.status("a"));
    }
  }

  @Test
  void atTheRunningLimitTheLeastRecentlyUsedIdleInstanceMakesRoom() {
    try (InstanceHarness hub = InstanceHarness.start(InstanceHarness.settings(1, true))) {
      long a = json(hub.call("POST", "/api/v1/instances/a", config(hub, ""))).path("pid").asLong();
      assertEquals("running", json(hub.call("POST", "/api/v1/instances/b", config(hub, ""))).path("status").asText());
      assertEquals("stopped", hub.status("a"));
      eventually("a's process is gone", 5, () -> !alive(a));

      HttpResponse<String> answer = hub.call("POST", "/v1/chat/completions", chat("a"));
      assertEquals(200, answer.statusCode(), answer.body());
      assertEquals("running", hub.status("a"));
      assertEquals("stopped", hub.status("b"));
    }
  }

  @Test
  void anIdleInstanceIsStopped() {
    try (InstanceHarness hub = InstanceHarness.start(InstanceHarness.settings(-1, true))) {
      hub.call("POST", "/api/v1/instances/awake", config(hub, ""));
      hub.call("POST", "/api/v1/instances/sleepy", config(hub, ",\"idle_timeout\":\"1s\""));
      assertEquals(200, hub.call("POST", "/v1/chat/completions", chat("sleepy")).statusCode());
      eventually("sleepy is stopped", 10, () -> hub.status("sleepy").equals("stopped"));
      assertEquals("running", hub.status("awake"), "no idle timeout, never stopped");
      assertTrue(hub.call("GET", "/api/v1/instances/sleepy/logs", null).body().contains("idle for 1 s"));
    }
  }

  @Test
  void aCrashedInstanceIsRestartedUpToItsLimitThenFailed() {
    try (InstanceHarness hub = InstanceHarness.start(InstanceHarness.settings(-1, true))) {
      long first = json(hub.call("POST", "/api/v1/instances/flaky",
          config(hub, ",\"auto_restart\":true,\"max_restarts\":1,\"restart_delay\":\"100ms\""))).path("pid").asLong();
      ProcessHandle.of(first).orElseThrow().destroyForcibly();
      eventually("flaky runs again", 20, () -> {
        JsonNode now = hub.instance("flaky");
        return now.path("status").asText().equals("running") && now.path("pid").asLong() != first;
      });
      JsonNode restarted = hub.instance("flaky");
      assertEquals(1, restarted.path("restarts").asInt());
      assertEquals(200, hub.call("POST", "/v1/chat/completions", chat("flaky")).statusCode());

      ProcessHandle.of(restarted.path("pid").asLong()).orElseThrow().destroyForcibly();
      eventually("flaky is failed", 10, () -> hub.status("flaky").equals("failed"));
      assertTrue(hub.instance("flaky").path("last_error").asText().contains("exited unexpectedly"));

      long once = json(hub.call("POST", "/api/v1/instances/fragile", config(hub, ""))).path("pid").asLong();
      ProcessHandle.of(once).orElseThrow().destroyForcibly();
      eventually("fragile is failed", 10, () -> hub.status("fragile").equals("failed"));
      HttpResponse<String> routed = hub.call("POST", "/v1/chat/completions", chat("fragile"));
      assertEquals(200, routed.statusCode(), "on-demand start brings a failed instance back: " + routed.body());
    }
  }

  @Test
  void instancesSurviveARestartOfTheServerAndNoProcessOutlivesIt() {
    Path dataDir = InstanceHarness.tempDir();
    long pid;
    try (InstanceHarness hub = new InstanceHarness(dataDir, InstanceHarness.settings(-1, true), List.of(), List.of(), null)) {
      pid = json(hub.call("POST", "/api/v1/instances/keeper", config(hub, ",\"auto_start\":true"))).path("pid").asLong();
      hub.call("POST", "/api/v1/instances/manual", config(hub, ""));
      hub.call("PUT", "/api/v1/instances/manual", "{\"max_concurrency\":2}");
    }
    assertTrue(!alive(pid), "closing the server stopped its instances");
    try (InstanceHarness hub = new InstanceHarness(dataDir, InstanceHarness.settings(-1, true), List.of(), List.of(), null)) {
      eventually("keeper is running again", 20, () -> hub.status("keeper").equals("running"));
      assertNotEquals(pid, hub.instance("keeper").path("pid").asLong());
      JsonNode manual = hub.instance("manual");
      assertEquals("stopped", manual.path("status").asText());
      assertEquals(2, manual.path("options").path("max_concurrency").asInt(), "the update was kept");
      assertEquals(2, json(hub.call("GET", "/api/v1/instances", null)).size());
    }
  }

  @Test
  void managementAndInferenceKeysOpenTheirOwnEndpoints() {
    try (InstanceHarness hub = new InstanceHarness(InstanceHarness.tempDir(), InstanceHarness.settings(-1, true),
        List.of("mk-1"), List.of("ik-1"), null)) {
      HttpResponse<String> anonymous = hub.as(null).call("GET", "/api/v1/instances", null);
      assertEquals(401, anonymous.statusCode());
      assertTrue(json(anonymous).path("error").isTextual(), "flat error shape: " + anonymous.body());
      assertEquals(401, hub.as("ik-1").call("GET", "/api/v1/instances", null).statusCode(), "inference keys do not manage");
      assertEquals(200, hub.as("mk-1").call("GET", "/api/v1/instances", null).statusCode());
      assertEquals(200, hub.as("ik-1").call("GET", "/v1/models", null).statusCode());
      assertEquals(200, hub.as("mk-1").call("GET", "/v1/models", null).statusCode(), "a management key also infers");
      assertEquals(401, hub.as("wrong").call("GET", "/v1/models", null).statusCode());
    }
  }
}
