package io.switchboard.server.instances;

import static io.switchboard.server.instances.InstanceHarness.json;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.switchboard.protocol.Json;
import java.net.http.HttpResponse;
import org.junit.jupiter.api.Test;

/** A managed instance gets the client's body as it was sent: the parameters that shape an answer are its to honour. */
class InstanceForwardingTest {

  private static final String SHAPING = """
      {"model":"tiny","messages":[{"role":"user","content":"hi"}],"n":2,"logprobs":true,"top_logprobs":3,"seed":7,
       "response_format":{"type":"json_object"},"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"required",
       "max_tokens":3}""";

  @Test
  void theInstanceGetsTheBodyAsTheClientSentIt() throws Exception {
    try (InstanceHarness hub = InstanceHarness.start(InstanceHarness.settings(-1, true))) {
      HttpResponse<String> created = hub.call("POST", "/api/v1/instances/tiny",
          "{\"model\":\"/models/tiny.gguf\",\"command_override\":\"" + hub.fakeLlamaServer() + "\"}");
      assertEquals(201, created.statusCode(), created.body());
      HttpResponse<String> answer = hub.call("POST", "/v1/chat/completions", SHAPING);
      assertEquals(200, answer.statusCode(), answer.body());
      assertEquals(Json.MAPPER.readTree(SHAPING), json(hub.call("GET", "/api/v1/instances/tiny/proxy/fake/last-body", null)));
    }
  }
}
