package io.switchboard.server.llm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.Unpooled;
import io.netty.handler.codec.http.DefaultHttpHeaders;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaders;
import io.switchboard.server.http.ApiError;
import io.switchboard.server.metrics.Metrics;
import io.vertx.core.buffer.Buffer;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** Token counts are exact whatever the cut of the bytes, and a usage event the client did not ask for never reaches it. */
class MeteredDownstreamTest {

  private static final String STREAM = """
      data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}

      data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}

      data: {"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":17,"completion_tokens":123,"total_tokens":140}}

      data: [DONE]

      """;
  private static final String USAGE_EVENT = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[],"
      + "\"usage\":{\"prompt_tokens\":17,\"completion_tokens\":123,\"total_tokens\":140}}\n\n";
  private static final String ANSWER = "{\"id\":\"c\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":"
      + "{\"role\":\"assistant\",\"content\":\"Hello there\"},\"finish_reason\":\"stop\"}],"
      + "\"usage\":{\"prompt_tokens\":17,\"completion_tokens\":123,\"total_tokens\":140},\"timings\":{\"predicted_ms\":12.5}}";

  /** What the client got. */
  private static final class Client implements Dispatch.Downstream {
    final StringBuilder bytes = new StringBuilder();
    boolean complete;

    @Override
    public void head(Worker worker, int status, HttpHeaders headers) {
    }

    @Override
    public void chunk(Buffer data) {
      bytes.append(data.toString(StandardCharsets.UTF_8));
    }

    @Override
    public void complete() {
      complete = true;
    }

    @Override
    public void fail(ApiError error, boolean headSent) {
    }
  }

  private static HttpHeaders type(String contentType) {
    return new DefaultHttpHeaders().set(HttpHeaderNames.CONTENT_TYPE, contentType);
  }

  /** Sends {@code text} cut at {@code cuts} (ascending), half the pieces lent, and returns what the client got and the tokens booked. */
  private static Result send(String text, String contentType, boolean dropUsage, int... cuts) {
    Metrics metrics = new Metrics();
    Client client = new Client();
    MeteredDownstream metered = new MeteredDownstream(client, metrics.start("m", "/chat/completions"), dropUsage, null);
    metered.head(null, 200, type(contentType));
    byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
    int from = 0;
    int piece = 0;
    for (int cut : cuts) {
      feed(metered, bytes, from, cut, piece++);
      from = cut;
    }
    feed(metered, bytes, from, bytes.length, piece);
    metered.complete();
    assertTrue(client.complete);
    Metrics.Summary summary = metrics.summary();
    return new Result(client.bytes.toString(), summary.tokensIn(), summary.tokensOut());
  }

  private static void feed(MeteredDownstream metered, byte[] bytes, int from, int to, int piece) {
    if (to <= from) {
      return;
    }
    if (piece % 2 == 0) {
      metered.chunk(Buffer.buffer().appendBytes(bytes, from, to - from));
    } else {
      metered.lentChunk(Unpooled.wrappedBuffer(bytes, from, to - from));
    }
  }

  private record Result(String client, long tokensIn, long tokensOut) {}

  @Test
  void aStreamsUsageIsCountedWhereverTheReadsCutIt() {
    int length = STREAM.getBytes(StandardCharsets.UTF_8).length;
    for (int cut = 1; cut < length; cut++) {
      Result result = send(STREAM, "text/event-stream", false, cut);
      assertEquals(17, result.tokensIn(), "cut at " + cut);
      assertEquals(123, result.tokensOut(), "cut at " + cut);
      assertEquals(STREAM, result.client(), "the client gets every byte, cut at " + cut);
    }
    Result twoCuts = send(STREAM, "text/event-stream", false, 150, 300);
    assertEquals(123, twoCuts.tokensOut());
  }

  @Test
  void aUsageEventTheServerAskedForIsLeftOutWhereverTheReadsCutIt() {
    String expected = STREAM.replace(USAGE_EVENT, "");
    int length = STREAM.getBytes(StandardCharsets.UTF_8).length;
    for (int cut = 1; cut < length; cut++) {
      Result result = send(STREAM, "text/event-stream", true, cut);
      assertEquals(123, result.tokensOut(), "cut at " + cut);
      assertEquals(expected, result.client(), "cut at " + cut);
    }
    assertFalse(send(STREAM, "text/event-stream", true).client().contains("usage"));
  }

  @Test
  void aUsageInAChunkWithChoicesIsNeverLeftOut() {
    String llamaServerStyle = "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],"
        + "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7}}\n\ndata: [DONE]\n\n";
    Result result = send(llamaServerStyle, "text/event-stream", true, 40);
    assertEquals(llamaServerStyle, result.client(), "the finish reason rides in it");
    assertEquals(4, result.tokensOut());
  }

  @Test
  void aJsonAnswersUsageIsCountedWhereverTheReadsCutIt() {
    int length = ANSWER.length();
    for (int cut = 1; cut < length; cut++) {
      Result result = send(ANSWER, "application/json", false, cut);
      assertEquals(17, result.tokensIn(), "cut at " + cut);
      assertEquals(123, result.tokensOut(), "cut at " + cut);
      assertEquals(ANSWER, result.client());
    }
    for (int cut = 1; cut < length - 1; cut += 7) {
      assertEquals(123, send(ANSWER, "application/json", false, cut, cut + 1).tokensOut(), "cut at " + cut + " and after");
    }
  }

  @Test
  void aStreamWithoutEventEndsIsPassedOnAtItsEnd() {
    String odd = "data: {\"choices\":[]}";
    assertEquals(odd, send(odd, "text/event-stream", true, 5).client());
  }
}
