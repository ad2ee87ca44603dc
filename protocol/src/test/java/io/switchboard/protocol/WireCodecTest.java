package io.switchboard.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.vertx.core.buffer.Buffer;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class WireCodecTest {

  @Test
  void readsTheRegisterMessageOfTheSpec() {
    String text = """
        {"type":"register","client_key":"k","worker_id":"w1","worker_name":"gpu","models":["a","b"],
         "max_concurrency":3,"embedding_batch_size":16,"something_newer":true}""";

    WorkerMessage message = WireCodec.decode(text);

    assertEquals(new WorkerMessage.Register("k", "w1", "gpu", List.of("a", "b"), 3, 16, null), message);
  }

  @Test
  void acceptsARegisterMessageWithOnlyItsType() {
    WorkerMessage.Register register = assertInstanceOf(WorkerMessage.Register.class, WireCodec.decode("{\"type\":\"register\"}"));
    assertEquals(new WorkerMessage.Register(null, null, null, null, null, null, null), register);
  }

  @Test
  void roundTripsEveryKind() {
    List<WorkerMessage> messages = List.of(
        new WorkerMessage.Registered("id", 5000, null),
        new WorkerMessage.Registered("id", 5000, 4),
        new WorkerMessage.Lane("k", "w1"),
        new WorkerMessage.StatusUpdate(List.of("m"), 2, WorkerMessage.Status.DRAINING),
        new WorkerMessage.Heartbeat(123),
        new WorkerMessage.Request(7, "POST", "/chat/completions", Map.of("Accept", "text/event-stream"), true, 42),
        new WorkerMessage.ResponseHead(7, 200, Map.of("Content-Type", "application/json")),
        new WorkerMessage.ResponseEnd(7, Failures.UPSTREAM_ERROR, "broke"),
        new WorkerMessage.Cancel(7),
        new WorkerMessage.Pause(7),
        new WorkerMessage.Resume(7),
        new WorkerMessage.Drain());
    for (WorkerMessage message : messages) {
      assertEquals(message, WireCodec.decode(WireCodec.encode(message)));
    }
    assertEquals("{\"type\":\"cancel\",\"request_id\":7}", WireCodec.encode(new WorkerMessage.Cancel(7)));
    assertEquals("{\"type\":\"pause\",\"request_id\":7}", WireCodec.encode(new WorkerMessage.Pause(7)));
  }

  @Test
  void refusesUnknownMessages() {
    assertThrows(IllegalArgumentException.class, () -> WireCodec.decode("{\"type\":\"launch_missiles\"}"));
    assertThrows(IllegalArgumentException.class, () -> WireCodec.decode("not json"));
  }

  @Test
  void dataFramesCarryTheirBytesUntouched() {
    Buffer payload = Buffer.buffer("data: {\"x\":1}\n\n");

    DataFrame frame = DataFrame.decode(DataFrame.encode(DataFrame.Kind.RESPONSE_BODY, Long.MAX_VALUE - 1, payload));

    assertEquals(DataFrame.Kind.RESPONSE_BODY, frame.kind());
    assertEquals(Long.MAX_VALUE - 1, frame.requestId());
    assertEquals(payload, frame.payload());
    assertThrows(IllegalArgumentException.class, () -> DataFrame.decode(Buffer.buffer(new byte[] {1, 2})));
    assertThrows(IllegalArgumentException.class, () -> DataFrame.decode(Buffer.buffer(new byte[] {9, 0, 0, 0, 0, 0, 0, 0, 1})));
  }

  @Test
  void onlyFailuresBeforeAnyAnswerAreRetriable() {
    assertEquals(true, Failures.retriable(Failures.WORKER_LOST));
    assertEquals(true, Failures.retriable(Failures.UPSTREAM_UNREACHABLE));
    assertEquals(false, Failures.retriable(Failures.UPSTREAM_ERROR));
  }
}
