package io.switchboard.server.llm;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.handler.codec.http.DefaultHttpHeaders;
import io.netty.handler.codec.http.HttpHeaders;
import io.switchboard.server.http.ApiError;
import io.switchboard.server.metrics.Metrics;
import io.vertx.core.buffer.Buffer;
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
import org.openjdk.jmh.infra.Blackhole;

/**
 * What the server does to each event of a streamed answer before it goes to the client: the first
 * byte's timer, and the scan for a {@code usage} object, which only the last event carries: on a heap
 * buffer, as a worker's frame brings it, and on a direct one lent by an upstream connection. It lives
 * in the server's package because the relay's pieces are not public.
 * Run: {@code java -jar bench/target/switchboard-bench.jar SseRelayBenchmarks}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 8, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class SseRelayBenchmarks {

  private MeteredDownstream relay;
  private Buffer tokenEvent;
  private Buffer usageEvent;
  private ByteBuf lentTokenEvent;
  private ByteBuf lentUsageEvent;

  @Setup
  public void setUp(Blackhole sent) {
    Dispatch.Downstream client = new Dispatch.Downstream() {
      @Override
      public void head(Worker worker, int status, HttpHeaders headers) {
        sent.consume(headers);
      }

      @Override
      public void chunk(Buffer data) {
        sent.consume(data);
      }

      @Override
      public void lentChunk(ByteBuf bytes) {
        sent.consume(bytes);
      }

      @Override
      public void complete() {}

      @Override
      public void fail(ApiError error, boolean headSent) {}
    };
    relay = new MeteredDownstream(client, new Metrics().start("llama-3.1-8b", "/chat/completions"), true, null);
    relay.head(null, 200, new DefaultHttpHeaders().set("content-type", "text/event-stream"));
    tokenEvent = Buffer.buffer("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
        + "\"model\":\"llama-3.1-8b\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" token\"}}]}\n\n");
    usageEvent = Buffer.buffer("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
        + "\"model\":\"llama-3.1-8b\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],"
        + "\"usage\":{\"prompt_tokens\":812,\"completion_tokens\":256,\"total_tokens\":1068}}\n\ndata: [DONE]\n\n");
    lentTokenEvent = direct(tokenEvent);
    lentUsageEvent = direct(usageEvent);
  }

  private static ByteBuf direct(Buffer event) {
    ByteBuf bytes = PooledByteBufAllocator.DEFAULT.directBuffer(event.length());
    return bytes.writeBytes(event.getBytes());
  }

  @TearDown
  public void tearDown() {
    lentTokenEvent.release();
    lentUsageEvent.release();
  }

  @Benchmark
  public void relayTokenEvent() {
    relay.chunk(tokenEvent);
  }

  @Benchmark
  public void relayLastEventWithUsage() {
    relay.chunk(usageEvent);
  }

  @Benchmark
  public void relayLentTokenEvent() {
    relay.lentChunk(lentTokenEvent);
  }

  @Benchmark
  public void relayLentLastEventWithUsage() {
    relay.lentChunk(lentUsageEvent);
  }
}
