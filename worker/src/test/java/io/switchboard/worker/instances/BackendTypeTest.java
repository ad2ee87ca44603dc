package io.switchboard.worker.instances;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The command lines users would type for each backend. */
class BackendTypeTest {

  private static final ObjectMapper JSON = new ObjectMapper();

  private static ObjectNode options(String json) throws Exception {
    return (ObjectNode) JSON.readTree(json);
  }

  @Test
  void llamaServerTakesItsOptionsAsFlags() throws Exception {
    List<String> argv = BackendType.LLAMA_CPP.command("/opt/llama-server",
        options("{\"model\":\"/m/q.gguf\",\"ctx_size\":4096,\"flash_attn\":true,\"mlock\":false,\"lora\":[\"a.gguf\",\"b.gguf\"]}"),
        List.of("--verbose"), 8001, "q");
    assertEquals(List.of("/opt/llama-server", "--model", "/m/q.gguf", "--ctx-size", "4096", "--flash-attn",
        "--lora", "a.gguf", "--lora", "b.gguf", "--host", "127.0.0.1", "--port", "8001", "--verbose"), argv);
  }

  @Test
  void vllmServesItsModelPositionallyUnderTheInstanceName() throws Exception {
    List<String> argv = BackendType.VLLM.command(null, options("{\"model\":\"Qwen/Qwen2.5-7B\",\"tensor_parallel_size\":2}"),
        List.of(), 8002, "qwen");
    assertEquals(List.of("vllm", "serve", "Qwen/Qwen2.5-7B", "--tensor-parallel-size", "2", "--served-model-name", "qwen",
        "--host", "127.0.0.1", "--port", "8002"), argv);
    assertEquals("mlx_lm.server", BackendType.MLX_LM.command(null, options("{}"), List.of(), 1, "m").getFirst());
  }

  @Test
  void optionsThatCannotBecomeFlagsAreRefused() throws Exception {
    assertNull(BackendType.checkOptions(options("{\"ctx_size\":1,\"tags\":[\"a\",1]}")));
    assertTrue(BackendType.checkOptions(options("{\"port\":1}")).contains("set by Switchboard"));
    assertTrue(BackendType.checkOptions(options("{\"rope\":{\"scale\":2}}")).contains("must be a string"));
    assertTrue(BackendType.checkOptions(options("{\"--ctx-size\":1}")).contains("snake_case"));
  }
}
