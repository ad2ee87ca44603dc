package io.switchboard.server.llm;

import static io.switchboard.server.llm.TestGateway.chatBody;
import static io.switchboard.server.llm.TestGateway.eventually;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.switchboard.fakeupstream.FakeUpstream;
import io.switchboard.fakeupstream.TinyGguf;
import io.switchboard.worker.WorkerAgent;
import io.switchboard.worker.llamacpp.LlamaBackend;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A worker's models may change while its {@code register} is on the wire: the server must end up
 * knowing the worker's current models and status whatever the interleaving. The network link holds
 * the register in flight so that the change lands exactly there.
 */
class ModelsDuringRegistrationTest {

  @Test
  void ggufModelsThatFinishLoadingWhileTheWorkerRegistersAreServed() throws Exception {
    Path model = TinyGguf.write(Files.createTempDirectory("gguf").resolve("tiny.gguf"));
    Vertx own = Vertx.vertx();
    LlamaBackend backend = new LlamaBackend(own, new LlamaBackend.Options(1024, 2, 0, 2));
    try (TestGateway gateway = TestGateway.start(); NetworkLink link = new NetworkLink(gateway)) {
      WorkerAgent worker = new WorkerAgent(own, link.dialedBy(gateway.workerConfig().withCapacity(backend.slots(), 0)), backend);
      link.holdNextFirstMessage();
      worker.loading(true);
      Future<Void> registered = worker.start();
      link.awaitHeld();

      List<String> loaded = backend.load(List.of(model), List.of()).await();
      worker.updateModels(loaded);
      worker.loading(false);
      link.release();
      registered.await();

      eventually("the loaded model is routed to", () -> gateway.server.llm().router().model("tiny").isPresent());
      eventually("the state shows the worker ready with its model", () -> state(gateway).equals("ready [\"tiny\"]"));
      assertEquals(200, gateway.post("/v1/chat/completions",
          "{\"model\":\"tiny\",\"max_tokens\":2,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}").statusCode());
      worker.stop().await();
    } finally {
      backend.close();
      own.close().await();
    }
  }

  @Test
  void aWorkerThatStartsLoadingWhileItRegistersIsShownLoading() throws Exception {
    try (TestGateway gateway = TestGateway.start(); NetworkLink link = new NetworkLink(gateway)) {
      WorkerAgent worker = gateway.unstartedWorker(gateway.fake(FakeUpstream.Behavior.defaults()), link::dialedBy);
      link.holdNextFirstMessage();
      Future<Void> registered = worker.start();
      link.awaitHeld();

      worker.loading(true);
      link.release();
      registered.await();

      eventually("the state shows the worker loading", () -> state(gateway).startsWith("loading"));
    }
  }

  @Test
  void upstreamModelsThatChangeWhileTheWorkerReconnectsAreServed() throws Exception {
    try (TestGateway gateway = TestGateway.start(); NetworkLink link = new NetworkLink(gateway)) {
      FakeUpstream fake = gateway.fake(FakeUpstream.Behavior.defaults().withModels("a"));
      gateway.worker(fake, link::dialedBy);
      eventually("model a is routed to", () -> gateway.server.llm().router().model("a").isPresent());

      link.holdNextFirstMessage();
      link.cut(0);
      link.awaitHeld();
      fake.behave(fake.behavior().withModels("a", "c"));
      int listed = fake.modelListings();
      // Two polls answered after the change: the first one's new list has reached the worker.
      eventually("the worker polled the new list", () -> fake.modelListings() >= listed + 2);
      link.release();

      eventually("model c is routed to", () -> gateway.server.llm().router().model("c").isPresent());
      assertEquals(200, gateway.post("/v1/chat/completions", chatBody("c", false)).statusCode());
    }
  }

  /** The first worker's status and models as the state API shows them, e.g. {@code ready ["tiny"]}. */
  private static String state(TestGateway gateway) {
    try {
      var worker = new ObjectMapper().readTree(gateway.get("/api/state").body()).at("/plugins/llm/workers/0");
      return worker.path("status").asText() + " " + worker.path("models");
    } catch (Exception e) {
      return "";
    }
  }
}
