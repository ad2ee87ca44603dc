package io.switchboard.worker.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class UpstreamBackendTest {

  @Test
  void addsV1OnlyWhenTheUrlHasNoPath() {
    assertEquals("http://127.0.0.1:8081/v1", UpstreamBackend.normalize("http://127.0.0.1:8081"));
    assertEquals("http://127.0.0.1:8081/v1", UpstreamBackend.normalize("http://127.0.0.1:8081/"));
    assertEquals("http://127.0.0.1:8081/v1", UpstreamBackend.normalize("http://127.0.0.1:8081/v1/"));
    assertEquals("http://host/openai/v1", UpstreamBackend.normalize("http://host/openai/v1"));
    assertThrows(IllegalArgumentException.class, () -> UpstreamBackend.normalize("127.0.0.1:8081"));
  }
}
