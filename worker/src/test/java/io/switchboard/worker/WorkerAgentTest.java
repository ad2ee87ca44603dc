package io.switchboard.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.vertx.core.http.WebSocketConnectOptions;
import org.junit.jupiter.api.Test;

class WorkerAgentTest {

  private static String target(String serverUrl) {
    WebSocketConnectOptions options = WorkerAgent.connectOptions(serverUrl);
    return options.getHost() + ":" + options.getPort() + options.getURI() + (Boolean.TRUE.equals(options.isSsl()) ? " tls" : "");
  }

  @Test
  void dialsTheConnectPathOfTheServerItIsGiven() {
    assertEquals("gateway:8080/api/llm/connect", target("http://gateway:8080"));
    assertEquals("gateway:8080/api/llm/connect", target("ws://gateway:8080/"));
    assertEquals("gateway:443/api/llm/connect tls", target("https://gateway"));
    assertEquals("gateway:9000/custom/connect", target("http://gateway:9000/custom/connect"));
  }

  @Test
  void refusesAServerUrlItCannotDial() {
    assertThrows(IllegalArgumentException.class, () -> WorkerAgent.connectOptions("gateway:8080"));
    assertThrows(IllegalArgumentException.class, () -> WorkerConfig.of(" ", null));
    assertThrows(IllegalArgumentException.class, () -> WorkerConfig.of("http://g", null).withCapacity(0, 0));
  }
}
