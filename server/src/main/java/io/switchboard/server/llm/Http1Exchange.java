package io.switchboard.server.llm;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.socket.DuplexChannel;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.DefaultHttpContent;
import io.netty.handler.codec.http.DefaultHttpResponse;
import io.netty.handler.codec.http.DefaultLastHttpContent;
import io.netty.handler.codec.http.EmptyHttpHeaders;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.util.AsciiString;
import io.switchboard.server.auth.RateLimiter;
import io.switchboard.server.http.ApiError;
import io.switchboard.server.http.ApiException;
import io.switchboard.vertx.VertxInternals;
import io.switchboard.worker.backend.BackendCall;
import io.vertx.core.buffer.Buffer;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * One request the fast path serves: its body as it arrives, then its answer as the worker sends it. The
 * {@link Dispatch.Downstream} side may be called from another event loop (a worker's WebSocket);
 * everything it does runs on the connection's own loop.
 */
final class Http1Exchange implements Dispatch.Downstream {

  /** What an exchange asks of the connection's handler. */
  interface Connection {
    /** The answer has gone out: requests pipelined behind it may be read. */
    void answered(Http1Exchange exchange);

    /** Whether the rest of the request's body is being read away (it was refused before it all came). */
    boolean discardingBody();

    /** The output is shut; the connection closes when the refused body has been read. */
    void linger();
  }

  private static final AsciiString WORKER_HEADER = AsciiString.cached("X-Switchboard-Worker");
  private static final AsciiString REQUEST_ID_HEADER = AsciiString.cached(ForwardedHeaders.REQUEST_ID);
  private static final AsciiString ACCEL_BUFFERING_HEADER = AsciiString.cached("X-Accel-Buffering");
  private static final AsciiString AUTH_METHOD_HEADER = AsciiString.cached("X-Auth-Method");
  /** Answers of unknown length are flushed as they arrive; known lengths once this much is waiting. */
  private static final int FLUSH_BYTES = 64 * 1024;
  /** How long a refused body is still read (and dropped) after its answer, so that the client reads the answer. */
  private static final long LINGER_SECONDS = 5;

  private final ChannelHandlerContext ctx;
  private final Connection connection;
  private final Http1InferenceHandler.Settings settings;
  private final HttpRequest request;
  private final String endpoint;
  ByteBuf body;
  boolean keepAlive;
  boolean admitted;
  /** How a person's request authenticated, for {@code X-Auth-Method}; null for the server's own keys. */
  String authMethod;
  /** Where a person stands against their rate limits, for the answer's headers; null without limits. */
  RateLimiter.Verdict limits;
  /** The page's origin, where CORS is on and the request came from a browser's page; else null. */
  String origin;
  private String requestId;
  private BackendCall routed;
  private boolean eventStream;
  private int unflushed;
  /**
   * The latest piece of an answer that is not a stream, not written yet: if the end comes next, as
   * it does for an answer that arrived in one read, both go out as one last content.
   */
  private ByteBuf held;
  private boolean ended;

  Http1Exchange(ChannelHandlerContext ctx, Connection connection, Http1InferenceHandler.Settings settings, HttpRequest request,
      String endpoint) {
    this.ctx = ctx;
    this.connection = connection;
    this.settings = settings;
    this.request = request;
    this.endpoint = endpoint;
    this.keepAlive = HttpUtil.isKeepAlive(request);
  }

  ChannelHandlerContext context() {
    return ctx;
  }

  void append(ByteBuf part) {
    if (body == null) {
      long length = HttpUtil.getContentLength(request, 1024L);
      body = Unpooled.buffer((int) Math.min(length, settings.maxBodyBytes() + 1));
    }
    if (body.readableBytes() <= settings.maxBodyBytes()) {
      body.writeBytes(part);
    }
  }

  void route() {
    Buffer payload = VertxInternals.buffer(body == null ? Unpooled.EMPTY_BUFFER : body);
    body = null;
    Map<String, String> headers = ForwardedHeaders.of(request.headers()::get);
    requestId = headers.get(ForwardedHeaders.REQUEST_ID);
    try {
      routed = settings.inference().route(endpoint, payload, RequestPeek.of(payload), headers, limits == null ? null : limits::book, this);
    } catch (ApiException e) {
      refuse(e.error());
    }
  }

  /** Answers with the error before anything went to a worker. */
  void refuse(ApiError error) {
    body = null;
    fail(error, false);
  }

  void clientGone() {
    body = null;
    releaseHeld();
    if (!ended) {
      ended = true;
      if (routed != null) {
        routed.cancel();
      }
      leave();
    }
  }

  void writable(boolean writable) {
    if (routed != null && !ended) {
      routed.hold(!writable);
    }
  }

  private void leave() {
    if (admitted) {
      admitted = false;
      settings.admission().leave();
    }
  }

  @Override
  public void head(Worker worker, int status, HttpHeaders headers) {
    if (!ctx.executor().inEventLoop()) {
      ctx.executor().execute(() -> head(worker, status, headers));
      return;
    }
    if (ended) {
      return;
    }
    // The backend's headers become the answer's as they are, without a copy.
    HttpResponse response = new DefaultHttpResponse(HttpVersion.HTTP_1_1,
        status == 200 ? HttpResponseStatus.OK : HttpResponseStatus.valueOf(status), headers);
    boolean lengthKnown = headers.contains(HttpHeaderNames.CONTENT_LENGTH);
    eventStream = Dispatch.Downstream.isEventStream(headers);
    // Ours replace any of the same name the backend sent (vLLM echoes X-Request-Id, for one).
    headers.set(WORKER_HEADER, worker.id());
    headers.set(REQUEST_ID_HEADER, requestId);
    if (authMethod != null) {
      headers.set(AUTH_METHOD_HEADER, authMethod);
    }
    if (limits != null) {
      limits.headers(headers::set);
    }
    if (origin != null) {
      settings.cors().headers(origin, headers::set);
    }
    if (eventStream) {
      headers.set(HttpHeaderNames.CACHE_CONTROL, "no-store").set(ACCEL_BUFFERING_HEADER, "no");
    }
    if (!lengthKnown && request.protocolVersion().equals(HttpVersion.HTTP_1_0)) {
      keepAlive = false; // an HTTP/1.0 client knows no chunks: the answer ends where the connection does
    } else if (!lengthKnown) {
      HttpUtil.setTransferEncodingChunked(response, true);
    }
    HttpUtil.setKeepAlive(response, keepAlive);
    ctx.write(response, ctx.voidPromise());
  }

  @Override
  public void chunk(Buffer data) {
    if (!ctx.executor().inEventLoop()) {
      ctx.executor().execute(() -> chunk(data));
      return;
    }
    relay(VertxInternals.byteBuf(data));
  }

  /**
   * An upstream connection of this loop lends its read buffer: it goes to the client as it is,
   * with no copy on the heap, and back to the pool once written.
   */
  @Override
  public void lentChunk(ByteBuf bytes) {
    if (ctx.executor().inEventLoop()) {
      relay(bytes.retain());
    } else {
      Dispatch.Downstream.super.lentChunk(bytes);
    }
  }

  private void relay(ByteBuf bytes) {
    if (ended) {
      bytes.release();
      return;
    }
    if (eventStream) {
      ctx.writeAndFlush(new DefaultHttpContent(bytes), ctx.voidPromise());
      return;
    }
    writeHeld();
    held = bytes;
    unflushed += bytes.readableBytes();
    if (unflushed >= FLUSH_BYTES) {
      unflushed = 0;
      writeHeld();
      ctx.flush();
    }
  }

  @Override
  public void complete() {
    if (!ctx.executor().inEventLoop()) {
      ctx.executor().execute(this::complete);
      return;
    }
    if (!ended) {
      ByteBuf last = held;
      held = null;
      end(last == null ? LastHttpContent.EMPTY_LAST_CONTENT : lastContent(last));
    }
  }

  @Override
  public void fail(ApiError error, boolean headSent) {
    if (!ctx.executor().inEventLoop()) {
      ctx.executor().execute(() -> fail(error, headSent));
      return;
    }
    if (ended) {
      return;
    }
    if (!headSent) {
      end(errorResponse(error));
    } else if (eventStream) {
      end(lastContent(VertxInternals.byteBuf(error.toSseEvent())));
    } else {
      // Part of another answer is out already: cutting the connection is all that tells the client.
      ended = true;
      releaseHeld();
      leave();
      ctx.close();
      connection.answered(this);
    }
  }

  /** Our answers carry no trailers: the shared empty set spares a header table per answer. */
  private static LastHttpContent lastContent(ByteBuf bytes) {
    return new DefaultLastHttpContent(bytes, EmptyHttpHeaders.INSTANCE);
  }

  private void writeHeld() {
    if (held != null) {
      ctx.write(new DefaultHttpContent(held), ctx.voidPromise());
      held = null;
    }
  }

  private void releaseHeld() {
    if (held != null) {
      held.release();
      held = null;
    }
  }

  private FullHttpResponse errorResponse(ApiError error) {
    ByteBuf json = Unpooled.copiedBuffer(error.toJson().toString(), StandardCharsets.UTF_8);
    FullHttpResponse response = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.valueOf(error.status()), json);
    response.headers().set(HttpHeaderNames.CONTENT_TYPE, "application/json").setInt(HttpHeaderNames.CONTENT_LENGTH, json.readableBytes());
    if (error.retryLater()) {
      response.headers().set(HttpHeaderNames.RETRY_AFTER, "1");
    }
    if (requestId != null) {
      response.headers().set(ForwardedHeaders.REQUEST_ID, requestId);
    }
    if (limits != null) {
      limits.headers(response.headers()::set);
    }
    if (origin != null) {
      settings.cors().headers(origin, response.headers()::set);
    }
    HttpUtil.setKeepAlive(response, keepAlive);
    return response;
  }

  private void end(Object last) {
    ended = true;
    leave();
    if (keepAlive) {
      ctx.writeAndFlush(last, ctx.voidPromise());
    } else if (connection.discardingBody() && ctx.channel() instanceof DuplexChannel duplex) {
      // The client is still sending the body this answer refuses: closing now would reset the
      // connection and lose the answer on its way. Shut the output, read the rest away, close at its end.
      connection.linger();
      ctx.writeAndFlush(last).addListener(written -> duplex.shutdownOutput());
      ctx.executor().schedule(() -> ctx.close(), LINGER_SECONDS, TimeUnit.SECONDS);
    } else {
      ctx.writeAndFlush(last).addListener(ChannelFutureListener.CLOSE);
    }
    connection.answered(this);
  }
}
