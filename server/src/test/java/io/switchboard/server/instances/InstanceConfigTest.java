package io.switchboard.server.instances;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.switchboard.protocol.Json;
import io.switchboard.worker.instances.BackendType;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class InstanceConfigTest {

  private static InstanceConfig parse(String json) throws Exception {
    return InstanceConfig.parse(Json.MAPPER.readTree(json));
  }

  @Test
  void whatIsLeftOutTakesItsDefault() throws Exception {
    InstanceConfig config = parse("{\"model\":\"/models/a.gguf\"}");
    assertEquals(BackendType.LLAMA_CPP, config.backendType());
    assertEquals("/models/a.gguf", config.backendOptions().get("model").asText());
    assertEquals(List.of(), config.extraArgs());
    assertEquals(true, config.onDemandStart());
    assertEquals(false, config.autoStart());
    assertEquals(Duration.ZERO, config.idleTimeout());
    assertEquals(Duration.ofSeconds(5), config.restartDelay());
    assertEquals(3, config.maxRestarts());
    assertEquals(32, config.maxConcurrency());
  }

  @Test
  void whatItWritesItReadsBackTheSame() throws Exception {
    InstanceConfig config = parse("""
        {"backend_type":"vllm","model":"org/m","backend_options":{"tensor_parallel_size":2},"extra_args":["--x"],
         "environment":{"CUDA_VISIBLE_DEVICES":0},"port":9001,"auto_start":true,"idle_timeout":30,"restart_delay":"2s",
         "auto_restart":true,"max_restarts":1,"max_concurrency":4}""");
    assertEquals(Map.of("CUDA_VISIBLE_DEVICES", "0"), config.environment(), "a number in the environment is its text");
    assertEquals(Duration.ofMinutes(30), config.idleTimeout(), "a bare number of minutes, as llamactl writes it");
    assertEquals("vllm", config.toJson().get("backend_type").asText());
    assertEquals("30m", config.toJson().get("idle_timeout").asText());
    assertEquals(config, InstanceConfig.parse(config.toJson()));
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', value = {
      "{\"modle\":\"m\"}                        | unknown field 'modle'",
      "{\"backend_type\":\"ollama\"}            | unknown backend_type 'ollama'; use llama_cpp, vllm, mlx_lm",
      "{\"backend_type\":1}                     | unknown backend_type '1'",
      "{\"auto_start\":\"yes\"}                 | auto_start must be true or false",
      "{\"auto_start\":1}                       | auto_start must be true or false",
      "{\"port\":\"8080\"}                      | port must be a whole number",
      "{\"port\":80.5}                          | port must be a whole number",
      "{\"port\":70000}                         | port must be between 1 and 65535",
      "{\"max_concurrency\":0}                  | max_concurrency 1 or more",
      "{\"backend_options\":[1]}                | backend_options must be an object",
      "{\"extra_args\":\"--x\"}                 | extra_args must be an array of strings",
      "{\"environment\":{\"1BAD\":\"x\"}}       | environment: '1BAD' must be a variable name",
      "{\"environment\":[]}                     | environment must be an object of names to string values",
      "{\"model\":\" \"}                        | model must be a non-empty string",
      "{\"idle_timeout\":\"soon\"}              | idle_timeout:",
      "{\"idle_timeout\":-1}                    | idle_timeout must not be negative",
      "{\"restart_delay\":{}}                   | restart_delay must be a duration"})
  void aWrongFieldIsNamedWithWhatItMustBe(String json, String message) {
    IllegalArgumentException refused = assertThrows(IllegalArgumentException.class, () -> parse(json));
    assertTrue(refused.getMessage().contains(message.strip()), refused.getMessage());
  }
}
