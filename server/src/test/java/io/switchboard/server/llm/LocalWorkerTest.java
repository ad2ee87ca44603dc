package io.switchboard.server.llm;

import static io.switchboard.server.llm.TestGateway.chatBody;
import static io.switchboard.server.llm.TestGateway.eventually;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.openai.models.chat.completions.ChatCompletionCreateParams;
import io.switchboard.fakeupstream.FakeUpstream;
import io.switchboard.server.ServerConfig;
import io.switchboard.server.SwitchboardServer;
import io.vertx.core.Vertx;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** One server process alone as a complete gateway: upstreams served by its in-process worker. */
class LocalWorkerTest {

  @Test
  void servesConfiguredUpstreamsWithTheirOwnKeyAndNeverTheClients() {
    Vertx upstreamVertx = Vertx.vertx();
    FakeUpstream fake = new FakeUpstream(upstreamVertx,
        FakeUpstream.Behavior.defaults().withModels("local-a", "local-b").withApiKey("upstream-secret")).start(0).await();
    ServerConfig config = TestGateway.config("client-secret", null, 10, Duration.ofSeconds(5), Duration.ofSeconds(10),
        List.of(new ServerConfig.Upstream("gpu-box", fake.baseUrl(), "upstream-secret", null, 2, 0)));
    try (TestGateway gateway = TestGateway.start(config)) {
      SwitchboardServer server = gateway.server;

      Worker local = server.llm().router().worker("local:gpu-box").orElseThrow();
      assertTrue(local.local());
      assertEquals(List.of("local-a", "local-b"), local.models(), "models discovered from the upstream's /v1/models");
      String answer = gateway.openai("client-secret").chat().completions()
          .create(ChatCompletionCreateParams.builder().model("local-b").addUserMessage("hi").build())
          .choices().get(0).message().content().orElseThrow();
      assertEquals("tok0 tok1 tok2 tok3 tok4 tok5 tok6 tok7", answer);
      assertEquals(Set.of("Bearer upstream-secret"), fake.authorizations(), "the upstream only ever saw its own key");

      HttpResponse<String> unauthorized = gateway.post("/v1/chat/completions", chatBody("local-a", false));
      assertEquals(401, unauthorized.statusCode());
    } finally {
      upstreamVertx.close().await();
    }
  }

  @Test
  void anUpstreamThatStartsLaterJoinsWhenItAnswers() {
    Vertx upstreamVertx = Vertx.vertx();
    try {
      int port;
      try (java.net.ServerSocket probe = new java.net.ServerSocket(0)) {
        port = probe.getLocalPort();
      } catch (java.io.IOException e) {
        throw new IllegalStateException(e);
      }
      ServerConfig config = TestGateway.config(null, null, 10, Duration.ofSeconds(5), Duration.ofSeconds(10),
          List.of(ServerConfig.Upstream.of("http://127.0.0.1:" + port)));
      try (TestGateway gateway = TestGateway.start(config)) {
        assertEquals(404, gateway.post("/v1/chat/completions", chatBody("late", false)).statusCode());

        new FakeUpstream(upstreamVertx, FakeUpstream.Behavior.defaults().withModels("late")).start(port).await();

        eventually("the late upstream's model is served", () -> gateway.server.llm().router().model("late").isPresent());
        assertEquals(200, gateway.post("/v1/chat/completions", chatBody("late", false)).statusCode());
      }
    } finally {
      upstreamVertx.close().await();
    }
  }
}
