package io.switchboard.server.instances;

import static io.switchboard.server.instances.InstanceHarness.alive;
import static io.switchboard.server.instances.InstanceHarness.chat;
import static io.switchboard.server.instances.InstanceHarness.eventually;
import static io.switchboard.server.instances.InstanceHarness.json;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfEnvironmentVariable;

/** Instances as real child processes: create, route, proxy, logs, stop, delete, and what goes wrong. */
class InstanceLifecycleTest {

  @Test
  void anInstanceIsCreatedStartedServedProxiedStoppedAndDeleted() {
    try (InstanceHarness hub = InstanceHarness.start(InstanceHarness.settings(-1, true))) {
      String body = "{\"model\":\"/models/tiny-q4.gguf\",\"command_override\":\"" + hub.fakeLlamaServer()
          + "\",\"backend_options\":{\"ctx_size\":2048,\"flash_attn\":true}}";
      HttpResponse<String> created = hub.call("POST", "/api/v1/instances/tiny", body);
      assertEquals(201, created.statusCode(), created.body());
      JsonNode instance = json(created);
      assertEquals("running", instance.path("status").asText());
      int port = instance.path("port").asInt();
      assertTrue(port >= 20100 && port <= 20199, "port from the range: " + port);
      long pid = instance.path("pid").asLong();
      assertTrue(alive(pid));
      assertEquals(2048, instance.path("options").path("backend_options").path("ctx_size").asInt());

      OpenAIClient openai = OpenAIOkHttpClient.builder().baseUrl(hub.url() + "/v1").apiKey("unused").maxRetries(0)
          .timeout(Duration.ofSeconds(20)).build();
      ChatCompletion answer = openai.chat().completions().create(ChatCompletionCreateParams.builder()
          .model("tiny").addUserMessage("hello").build());
      assertFalse(answer.choices().getFirst().message().content().orElse("").isEmpty());

      JsonNode models = json(hub.call("GET", "/v1/models", null));
      JsonNode listed = null;
      for (JsonNode model : models.path("data")) {
        if (model.path("id").asText().equals("tiny")) {
          listed = model;
        }
      }
      assertTrue(listed != null, "instance in /v1/models: " + models);
      assertEquals("model", listed.path("object").asText());
      assertEquals(instance.path("created").asLong(), listed.path("created").asLong());

      HttpResponse<String> health = hub.call("GET", "/api/v1/instances/tiny/proxy/health", null);
      assertEquals(200, health.statusCode());
      assertEquals("ok", json(health).path("status").asText());
      HttpResponse<String> proxiedChat = hub.call("POST", "/api/v1/instances/tiny/proxy/v1/chat/completions", chat("x"));
      assertEquals(200, proxiedChat.statusCode(), proxiedChat.body());

      HttpResponse<String> rerank = hub.call("POST", "/v1/rerank",
          "{\"model\":\"tiny\",\"query\":\"q\",\"documents\":[\"a\",\"abc\"]}");
      assertEquals(200, rerank.statusCode(), rerank.body());
      assertEquals(3, json(rerank).path("results").get(1).path("relevance_score").asInt());

      String logs = hub.call("GET", "/api/v1/instances/tiny/logs?lines=50", null).body();
      assertTrue(logs.contains("--model /models/tiny-q4.gguf --ctx-size 2048 --flash-attn --host 127.0.0.1 --port " + port), logs);
      assertTrue(logs.contains("listening on " + port), logs);
      assertEquals(2, hub.call("GET", "/api/v1/instances/tiny/logs?lines=2", null).body().lines().count());

      HttpResponse<String> stopped = hub.call("POST", "/api/v1/instances/tiny/stop", null);
      assertEquals(200, stopped.statusCode());
      assertEquals("stopped", json(stopped).path("status").asText());
      eventually("the process is gone", 5, () -> !alive(pid));
      HttpResponse<String> notRunning = hub.call("GET", "/api/v1/instances/tiny/proxy/health", null);
      assertEquals(503, notRunning.statusCode());
      assertTrue(json(notRunning).path("error").isTextual(), "flat error shape: " + notRunning.body());

      assertEquals(204, hub.call("DELETE", "/api/v1/instances/tiny", null).statusCode());
      assertEquals(404, hub.call("GET", "/api/v1/instances/tiny", null).statusCode());
      assertEquals("[]", hub.call("GET", "/api/v1/instances", null).body());
    }
  }

  @Test
  void badRequestsGetClearErrors() {
    try (InstanceHarness hub = InstanceHarness.start(InstanceHarness.settings(-1, true))) {
      assertError(hub.call("POST", "/api/v1/instances/bad%20name", "{}"), 400, "instance name");
      assertError(hub.call("POST", "/api/v1/instances/x", "{\"backend_type\":\"ollama\"}"), 400, "unknown backend_type");
      assertError(hub.call("POST", "/api/v1/instances/x", "{\"modle\":\"m\"}"), 400, "unknown field 'modle'");
      assertError(hub.call("POST", "/api/v1/instances/x", "{\"backend_options\":{\"port\":1}}"), 400, "set by Switchboard");
      assertError(hub.call("POST", "/api/v1/instances/x", "{\"idle_timeout\":\"soon\"}"), 400, "idle_timeout");
      assertError(hub.call("POST", "/api/v1/instances/x", "{not json"), 400, "not valid JSON");
      assertError(hub.call("POST", "/api/v1/instances/nope/start", null), 404, "does not exist");
      assertError(hub.call("GET", "/api/v1/instances/nope/logs", null), 404, "does not exist");
      assertEquals("[]", hub.call("GET", "/api/v1/instances", null).body(), "nothing was half-created");

      String body = "{\"model\":\"m.gguf\",\"command_override\":\"" + hub.fakeLlamaServer() + "\"}";
      assertEquals(201, hub.call("POST", "/api/v1/instances/dup", body).statusCode());
      assertError(hub.call("POST", "/api/v1/instances/dup", body), 409, "already exists");
      assertError(hub.call("GET", "/api/v1/instances/dup/logs?lines=many", null), 400, "lines");
      assertEquals(400, hub.call("POST", "/v1/chat/completions", "{\"messages\":[]}").statusCode(), "no model");
    }
  }

  @Test
  void aServerThatCannotStartIsFailedWithItsLastOutput() {
    try (InstanceHarness hub = InstanceHarness.start(InstanceHarness.settings(-1, true))) {
      String broken = InstanceHarness.fakeLlamaServer(hub.dataDir, "echo 'error: failed to load model /models/missing.gguf' >&2; exit 1");
      HttpResponse<String> created = hub.call("POST", "/api/v1/instances/broken",
          "{\"model\":\"/models/missing.gguf\",\"command_override\":\"" + broken + "\"}");
      assertEquals(201, created.statusCode(), "the instance exists even though it did not start");
      assertEquals("failed", json(created).path("status").asText());
      assertTrue(json(created).path("last_error").asText().contains("failed to load model"), created.body());

      HttpResponse<String> start = hub.call("POST", "/api/v1/instances/broken/start", null);
      assertError(start, 500, "failed to load model");

      hub.call("POST", "/api/v1/instances/missing", "{\"model\":\"m\",\"command_override\":\"/nonexistent/llama-server\"}");
      assertEquals("failed", hub.status("missing"));
      assertTrue(hub.instance("missing").path("last_error").asText().contains("/nonexistent/llama-server"));
    }
  }

  @Test
  void aStopDuringStartEndsTheStartAndTheProcess() throws Exception {
    try (InstanceHarness hub = InstanceHarness.start(InstanceHarness.settings(-1, true))) {
      String body = "{\"model\":\"m.gguf\",\"command_override\":\"" + hub.fakeLlamaServer()
          + "\",\"extra_args\":[\"--load-ms\",\"60000\"]}";
      CompletableFuture<HttpResponse<String>> creating = CompletableFuture.supplyAsync(
          () -> hub.call("POST", "/api/v1/instances/slow", body));
      eventually("it is starting", 10, () -> hub.call("GET", "/api/v1/instances/slow", null).statusCode() == 200
          && hub.status("slow").equals("starting") && hub.instance("slow").has("pid"));
      long pid = hub.instance("slow").path("pid").asLong();
      HttpResponse<String> stopped = hub.call("POST", "/api/v1/instances/slow/stop", null);
      assertEquals(200, stopped.statusCode());
      assertEquals("stopped", json(stopped).path("status").asText());
      assertEquals("stopped", json(creating.get()).path("status").asText());
      eventually("the process is gone", 5, () -> !alive(pid));
    }
  }

  @Test
  void aServerThatIgnoresSigtermIsKilled() {
    try (InstanceHarness hub = InstanceHarness.start(InstanceHarness.settings(-1, true))) {
      String stubborn = InstanceHarness.fakeLlamaServer(hub.dataDir, "trap '' TERM");
      JsonNode created = json(hub.call("POST", "/api/v1/instances/stubborn",
          "{\"model\":\"m.gguf\",\"command_override\":\"" + stubborn + "\"}"));
      assertEquals("running", created.path("status").asText(), created.toString());
      long pid = created.path("pid").asLong();
      assertEquals("stopped", json(hub.call("POST", "/api/v1/instances/stubborn/stop", null)).path("status").asText());
      assertFalse(alive(pid));
      assertTrue(hub.call("GET", "/api/v1/instances/stubborn/logs", null).body().contains("killed"));
    }
  }

  @Test
  void llamaServerInformationComesFromTheConfiguredProgram() {
    Path dir = InstanceHarness.tempDir();
    String fake = InstanceHarness.fakeLlamaServer(dir,
        "case \"$1\" in --version) echo 'version: 4242 (fake)';; --help) echo 'usage: llama-server [options]';;"
            + " --list-devices) echo 'Available devices:'; echo '  CUDA0: Fake GPU (24576 MiB)';; esac; exit 0");
    try (InstanceHarness hub = new InstanceHarness(dir, InstanceHarness.settings(-1, true), List.of(),
        List.of(), fake)) {
      HttpResponse<String> version = hub.call("GET", "/api/v1/server/version", null);
      assertEquals(200, version.statusCode());
      assertEquals("version: 4242 (fake)\n", version.body());
      assertTrue(hub.call("GET", "/api/v1/server/help", null).body().startsWith("usage: llama-server"));
      assertTrue(hub.call("GET", "/api/v1/server/devices", null).body().contains("CUDA0: Fake GPU"));
    }
    try (InstanceHarness hub = new InstanceHarness(InstanceHarness.tempDir(), InstanceHarness.settings(-1, true),
        List.of(), List.of(), "/opt/none/llama-server")) {
      for (String info : List.of("version", "help", "devices")) {
        HttpResponse<String> missing = hub.call("GET", "/api/v1/server/" + info, null);
        assertError(missing, 503, "set llama_server (env LLAMA_SERVER, flag --llama-server)");
      }
      HttpResponse<String> instance = hub.call("POST", "/api/v1/instances/nobin", "{\"model\":\"m.gguf\"}");
      assertEquals(201, instance.statusCode(), "the instance exists even though it did not start");
      assertTrue(json(instance).path("last_error").asText().contains("set llama_server (env LLAMA_SERVER, flag --llama-server)"),
          "its error names the setting: " + instance.body());
    }
  }

  /** Runs only where a real llama-server and a GGUF are given: {@code LLAMA_SERVER=... LLAMA_MODEL=... ./mvnw verify}. */
  @Test
  @EnabledIfEnvironmentVariable(named = "LLAMA_SERVER", matches = ".+")
  @EnabledIfEnvironmentVariable(named = "LLAMA_MODEL", matches = ".+")
  void aRealLlamaServerRunsEndToEnd() {
    try (InstanceHarness hub = new InstanceHarness(InstanceHarness.tempDir(), InstanceHarness.settings(-1, true), List.of(),
        List.of(), System.getenv("LLAMA_SERVER"))) {
      HttpResponse<String> created = hub.call("POST", "/api/v1/instances/real",
          "{\"model\":\"" + System.getenv("LLAMA_MODEL") + "\",\"backend_options\":{\"ctx_size\":512,\"n_gpu_layers\":"
              + System.getenv().getOrDefault("LLAMA_GPU_LAYERS", "0") + "}}");
      assertEquals("running", json(created).path("status").asText(), created.body());
      HttpResponse<String> answer = hub.call("POST", "/v1/chat/completions",
          "{\"model\":\"real\",\"max_tokens\":8,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
      assertEquals(200, answer.statusCode(), answer.body());
      assertEquals("assistant", json(answer).at("/choices/0/message/role").asText());
      assertTrue(hub.call("GET", "/api/v1/server/version", null).body().contains("version"));
      assertEquals("stopped", json(hub.call("POST", "/api/v1/instances/real/stop", null)).path("status").asText());
    }
  }

  static void assertError(HttpResponse<String> response, int status, String containing) {
    assertEquals(status, response.statusCode(), response.body());
    String message = json(response).path("error").asText();
    assertTrue(message.contains(containing), "'" + containing + "' in " + response.body());
  }
}
