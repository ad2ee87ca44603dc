package io.switchboard.bench;

import io.switchboard.protocol.DataFrame;
import io.switchboard.protocol.WireCodec;
import io.switchboard.protocol.WorkerMessage;
import io.switchboard.server.llm.Lease;
import io.switchboard.server.llm.LlmRouter;
import io.switchboard.server.llm.RequestPeek;
import io.switchboard.server.llm.Worker;
import io.switchboard.worker.backend.Backend;
import io.switchboard.worker.backend.BackendCall;
import io.switchboard.worker.backend.BackendRequest;
import io.switchboard.worker.backend.ResponseSink;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The pieces every proxied request passes through: the routing decision, reading {@code model} and
 * {@code stream} from the body, and the frames a token takes over the worker socket.
 * Run: {@code java -jar bench/target/switchboard-bench.jar HotPathBenchmarks}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 8, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class HotPathBenchmarks {

  private Vertx vertx;
  private LlmRouter router;
  private Buffer chatBody;
  private Buffer sseChunk;
  private Buffer encodedChunk;
  private WorkerMessage.ResponseHead head;

  @Setup
  public void setUp() {
    vertx = Vertx.vertx();
    router = new LlmRouter(vertx, 100, Duration.ofSeconds(30));
    Backend idle = new Backend() {
      @Override
      public BackendCall call(BackendRequest request, ResponseSink sink) {
        return () -> { };
      }

      @Override
      public Future<List<String>> models() {
        return Future.succeededFuture(List.of());
      }
    };
    for (int i = 0; i < 8; i++) {
      router.register(new Worker("w" + i, "w" + i, false, idle, List.of("other", "llama-3.1-8b", "qwen"), 16, 0));
    }
    StringBuilder messages = new StringBuilder();
    for (int i = 0; i < 12; i++) {
      messages.append(i == 0 ? "" : ",").append("{\"role\":\"user\",\"content\":\"question number ").append(i)
          .append(" with some words to make the body the size of a real chat turn\"}");
    }
    chatBody = Buffer.buffer("{\"model\":\"llama-3.1-8b\",\"messages\":[" + messages + "],\"temperature\":0.7,\"stream\":true}");
    sseChunk = Buffer.buffer("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
        + "\"model\":\"llama-3.1-8b\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" token\"}}]}\n\n");
    encodedChunk = DataFrame.encode(DataFrame.Kind.RESPONSE_BODY, 42, sseChunk);
    head = new WorkerMessage.ResponseHead(42, 200, Map.of("Content-Type", "text/event-stream"));
  }

  @TearDown
  public void tearDown() {
    vertx.close().await();
  }

  @Benchmark
  public Lease routeAndRelease() {
    Lease lease = router.acquire("llama-3.1-8b", Set.of(), null).future().result();
    lease.release();
    return lease;
  }

  @Benchmark
  public RequestPeek peekModelAndStream() {
    return RequestPeek.of(chatBody);
  }

  @Benchmark
  public Buffer encodeTokenFrame() {
    return DataFrame.encode(DataFrame.Kind.RESPONSE_BODY, 42, sseChunk);
  }

  @Benchmark
  public DataFrame decodeTokenFrame() {
    return DataFrame.decode(encodedChunk);
  }

  @Benchmark
  public String encodeResponseHead() {
    return WireCodec.encode(head);
  }
}
