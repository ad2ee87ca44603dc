package io.switchboard.server.llm;

import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPromise;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpStatusClass;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.util.ReferenceCountUtil;
import io.switchboard.server.auth.Authenticator;
import io.switchboard.server.auth.RateLimiter;
import io.switchboard.server.auth.Scope;
import io.switchboard.server.http.Admission;
import io.switchboard.server.http.ApiError;
import io.switchboard.server.http.CorsPolicy;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.ArrayDeque;

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
final class Http1InferenceHandler extends ChannelDuplexHandler implements Http1Exchange.Connection {

  /** What the handler takes from the server: one instance for all connections. */
  record Settings(Inference inference, Authenticator auth, RateLimiter limits, Admission admission, CorsPolicy cors, long maxBodyBytes) {}

  /** Where the content of the request being read goes. */
  private enum Inbound { NONE, VERTX, OURS, DISCARD }

  private final Settings settings;
  private Inbound inbound = Inbound.NONE;
  /** The answer went out and the output is shut; the connection closes at the refused body's end. */
  private boolean lingering;
  private int vertxAnswersOwed;
  private Http1Exchange current;
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
    Http1Exchange exchange = new Http1Exchange(ctx, this, settings, request, endpoint);
    if (settings.cors().enabled()) {
      exchange.origin = request.headers().get(HttpHeaderNames.ORIGIN);
    }
    current = exchange;
    Authenticator.Outcome outcome = settings.auth().authenticate(request.headers().get(HttpHeaderNames.AUTHORIZATION),
        request.headers().get("X-API-Key"), isLoopback(ctx.channel().remoteAddress()), Scope.INFERENCE);
    ApiError refusal = null;
    switch (outcome) {
      case Authenticator.Refused refused -> refusal = refused.error();
      case Authenticator.Admitted admitted -> {
        exchange.authMethod = admitted.principal().via().header();
        exchange.limits = settings.limits().admit(admitted.principal());
        if (exchange.limits != null && !exchange.limits.allowed()) {
          refusal = exchange.limits.error();
        }
      }
    }
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

  @Override
  public boolean discardingBody() {
    return inbound == Inbound.DISCARD;
  }

  @Override
  public void linger() {
    lingering = true;
  }

  /** Our answer has gone out: the requests that waited behind it are read now, in order. */
  @Override
  public void answered(Http1Exchange exchange) {
    if (current != exchange) {
      return;
    }
    current = null;
    ChannelHandlerContext context = exchange.context();
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
      channelRead(context, waiting.poll());
    }
    if (held == null) {
      context.channel().config().setAutoRead(true);
    }
  }
}
