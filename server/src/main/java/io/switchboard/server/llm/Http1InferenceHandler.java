package io.switchboard.server.llm;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPromise;
import io.netty.channel.socket.DuplexChannel;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.DefaultHttpContent;
import io.netty.handler.codec.http.DefaultHttpResponse;
import io.netty.handler.codec.http.DefaultLastHttpContent;
import io.netty.handler.codec.http.EmptyHttpHeaders;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpStatusClass;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.util.AsciiString;
import io.netty.util.ReferenceCountUtil;
import io.switchboard.server.auth.Authenticator;
import io.switchboard.server.auth.Scope;
import io.switchboard.server.http.Admission;
import io.switchboard.server.http.ApiError;
import io.switchboard.server.http.ApiException;
import io.switchboard.vertx.VertxInternals;
import io.switchboard.worker.backend.BackendCall;
import io.vertx.core.buffer.Buffer;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Serves the proxied OpenAI endpoints (chat completions, completions, rerank) straight off an
 * HTTP/1.1 connection's Netty pipeline, ahead of Vert.x's HTTP server and router, which every other
 * request still goes to. Vert.x's request, response and routing objects were the largest part of the
 * proxy path's CPU that was not the kernel's (bench/README.md). Here a request is read into one
 * buffer and its answer is written as it arrives; keys, admission, routing and metrics are the
 * router's own ({@link Authenticator}, {@link Admission}, {@link Inference#route}).
 *
 * <p>Answers leave in the order their requests came: a request pipelined behind one of ours waits
 * (reading pauses) until ours is answered, and while Vert.x owes an answer the next request goes to
 * Vert.x too. A request that upgrades the connection (a worker's WebSocket, h2c) hands the whole
 * connection to Vert.x.
 */
final class Http1InferenceHandler extends ChannelDuplexHandler {

  /** What the handler takes from the server: one instance for all connections. */
  record Settings(Inference inference, Authenticator auth, Admission admission, long maxBodyBytes) {}

  /** Where the content of the request being read goes. */
  private enum Inbound { NONE, VERTX, OURS, DISCARD }

  /** How long a refused body is still read (and dropped) after its answer, so that the client reads the answer. */
  private static final long LINGER_SECONDS = 5;

  private static final AsciiString WORKER_HEADER = AsciiString.cached("X-Switchboard-Worker");
  private static final AsciiString REQUEST_ID_HEADER = AsciiString.cached(ForwardedHeaders.REQUEST_ID);
  private static final AsciiString ACCEL_BUFFERING_HEADER = AsciiString.cached("X-Accel-Buffering");

  /** Answers of unknown length are flushed as they arrive; known lengths once this much is waiting. */
  private static final int FLUSH_BYTES = 64 * 1024;

  private final Settings settings;
  private Inbound inbound = Inbound.NONE;
  /** The answer went out and the output is shut; the connection closes at the refused body's end. */
  private boolean lingering;
  private int vertxAnswersOwed;
  private Exchange current;
  private ArrayDeque<Object> held;

  Http1InferenceHandler(Settings settings) {
    this.settings = settings;
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (held != null) {
      held.add(msg);
      return;
    }
    if (msg instanceof HttpRequest request) {
      if (current != null) {
        // Pipelined behind our request, whose answer is still on its way: it waits its turn.
        held = new ArrayDeque<>();
        held.add(msg);
        ctx.channel().config().setAutoRead(false);
        return;
      }
      String endpoint = vertxAnswersOwed == 0 ? ourEndpoint(request) : null;
      if (endpoint == null) {
        passToVertx(ctx, request);
        return;
      }
      begin(ctx, request, endpoint);
      if (!(msg instanceof HttpContent)) {
        return;
      }
    }
    if (msg instanceof HttpContent content) {
      content(ctx, content);
    } else {
      ctx.fireChannelRead(msg);
    }
  }

  private static String ourEndpoint(HttpRequest request) {
    if (request.method() != HttpMethod.POST || !request.decoderResult().isSuccess()
        || request.headers().contains(HttpHeaderNames.UPGRADE)) {
      return null;
    }
    String uri = request.uri();
    int query = uri.indexOf('?');
    return LlmPlugin.proxiedEndpoint(query < 0 ? uri : uri.substring(0, query));
  }

  private void passToVertx(ChannelHandlerContext ctx, HttpRequest request) {
    if (request.headers().contains(HttpHeaderNames.UPGRADE)) {
      // A WebSocket or h2c upgrade: the connection stops being HTTP/1.1, and is Vert.x's from now on.
      ctx.pipeline().remove(this);
      ctx.fireChannelRead(request);
      return;
    }
    vertxAnswersOwed++;
    inbound = request instanceof LastHttpContent ? Inbound.NONE : Inbound.VERTX;
    ctx.fireChannelRead(request);
  }

  private void begin(ChannelHandlerContext ctx, HttpRequest request, String endpoint) {
    Exchange exchange = new Exchange(ctx, request, endpoint);
    current = exchange;
    ApiError refusal = settings.auth().authenticate(request.headers().get(HttpHeaderNames.AUTHORIZATION),
        request.headers().get("X-API-Key"), isLoopback(ctx.channel().remoteAddress()), Scope.INFERENCE)
        instanceof Authenticator.Refused refused ? refused.error() : null;
    if (refusal == null && HttpUtil.getContentLength(request, -1L) > settings.maxBodyBytes()) {
      refusal = ApiError.tooLarge(settings.maxBodyBytes());
      exchange.keepAlive = false;
    }
    if (refusal == null && !settings.admission().enter()) {
      refusal = ApiError.draining();
    }
    if (refusal != null) {
      inbound = Inbound.DISCARD;
      exchange.refuse(refusal);
      return;
    }
    exchange.admitted = true;
    inbound = Inbound.OURS;
    if (HttpUtil.is100ContinueExpected(request)) {
      ctx.writeAndFlush(new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.CONTINUE, Unpooled.EMPTY_BUFFER),
          ctx.voidPromise());
    }
  }

  private static boolean isLoopback(SocketAddress address) {
    return address instanceof InetSocketAddress inet && inet.getAddress() != null && inet.getAddress().isLoopbackAddress();
  }

  private void content(ChannelHandlerContext ctx, HttpContent content) {
    boolean last = content instanceof LastHttpContent;
    switch (inbound) {
      case VERTX -> {
        if (last) {
          inbound = Inbound.NONE;
        }
        ctx.fireChannelRead(content);
      }
      case OURS -> {
        try {
          current.append(content.content());
        } finally {
          content.release();
        }
        if (current.body.readableBytes() > settings.maxBodyBytes()) {
          inbound = last ? Inbound.NONE : Inbound.DISCARD;
          current.keepAlive = false;
          current.refuse(ApiError.tooLarge(settings.maxBodyBytes()));
        } else if (last) {
          inbound = Inbound.NONE;
          current.route();
        }
      }
      case DISCARD -> {
        content.release();
        if (last) {
          inbound = Inbound.NONE;
          if (lingering) {
            ctx.close();
          }
        }
      }
      case NONE -> ctx.fireChannelRead(content);
    }
  }

  /** Vert.x's answers pass here on their way out: the end of each one is counted. */
  @Override
  public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
    if (msg instanceof LastHttpContent && vertxAnswersOwed > 0
        && !(msg instanceof HttpResponse response && response.status().codeClass() == HttpStatusClass.INFORMATIONAL)) {
      vertxAnswersOwed--;
    }
    ctx.write(msg, promise);
  }

  /** A client that reads slower than its answer comes holds the answer back at the worker. */
  @Override
  public void channelWritabilityChanged(ChannelHandlerContext ctx) {
    if (current != null) {
      current.writable(ctx.channel().isWritable());
    }
    ctx.fireChannelWritabilityChanged();
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    if (current != null) {
      current.clientGone();
    }
    if (held != null) {
      held.forEach(ReferenceCountUtil::release);
      held = null;
    }
    ctx.fireChannelInactive();
  }

  /** Our answer has gone out: the requests that waited behind it are read now, in order. */
  private void answered(ChannelHandlerContext ctx, Exchange exchange) {
    if (current != exchange) {
      return;
    }
    current = null;
    ArrayDeque<Object> waiting = held;
    held = null;
    if (waiting == null) {
      return;
    }
    while (!waiting.isEmpty()) {
      if (held != null) {
        held.addAll(waiting);
        return;
      }
      channelRead(ctx, waiting.poll());
    }
    if (held == null) {
      ctx.channel().config().setAutoRead(true);
    }
  }

  /**
   * One of our requests: its body as it arrives, then its answer as the worker sends it. The
   * {@link Dispatch.Downstream} side may be called from another event loop (a worker's WebSocket);
   * everything it does runs on the connection's own loop.
   */
  private final class Exchange implements Dispatch.Downstream {
    private final ChannelHandlerContext ctx;
    private final HttpRequest request;
    private final String endpoint;
    private ByteBuf body;
    private boolean keepAlive;
    private boolean admitted;
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

    Exchange(ChannelHandlerContext ctx, HttpRequest request, String endpoint) {
      this.ctx = ctx;
      this.request = request;
      this.endpoint = endpoint;
      this.keepAlive = HttpUtil.isKeepAlive(request);
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
        routed = settings.inference().route(endpoint, payload, RequestPeek.of(payload), headers, this);
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
        answered(ctx, this);
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
      HttpUtil.setKeepAlive(response, keepAlive);
      return response;
    }

    private void end(Object last) {
      ended = true;
      leave();
      if (keepAlive) {
        ctx.writeAndFlush(last, ctx.voidPromise());
      } else if (inbound == Inbound.DISCARD && ctx.channel() instanceof DuplexChannel duplex) {
        // The client is still sending the body this answer refuses: closing now would reset the
        // connection and lose the answer on its way. Shut the output, read the rest away, close at its end.
        lingering = true;
        ctx.writeAndFlush(last).addListener(written -> duplex.shutdownOutput());
        ctx.executor().schedule(() -> ctx.close(), LINGER_SECONDS, TimeUnit.SECONDS);
      } else {
        ctx.writeAndFlush(last).addListener(ChannelFutureListener.CLOSE);
      }
      answered(ctx, this);
    }
  }
}
