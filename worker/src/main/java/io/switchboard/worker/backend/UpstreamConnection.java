package io.switchboard.worker.backend;

import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.util.ReferenceCountUtil;
import io.switchboard.protocol.Failures;
import java.util.concurrent.TimeUnit;

/** One connection to the upstream, carrying one exchange at a time. */
final class UpstreamConnection extends ChannelInboundHandlerAdapter {
  private final UpstreamPool home;
  private final UpstreamTarget target;
  final Channel channel;
  /** When it was last put back in its pool's idle list; read by the pool's sweep. */
  long idleSince;
  private UpstreamCall call;
  private BackendRequest request;
  private boolean reused;
  private boolean answered;
  private boolean keepAlive;
  private long lastActivity;

  UpstreamConnection(UpstreamPool home, UpstreamTarget target, Channel channel) {
    this.home = home;
    this.target = target;
    this.channel = channel;
  }

  @Override
  public void channelActive(ChannelHandlerContext ctx) {
    home.opened(this);
    ctx.fireChannelActive();
  }

  void start(BackendRequest request, UpstreamCall call, boolean reused) {
    if (!call.attach(this)) {
      home.release(this);
      return;
    }
    this.call = call;
    this.request = request;
    this.reused = reused;
    this.answered = false;
    this.lastActivity = System.nanoTime();
    if (call.isPaused()) {
      channel.config().setAutoRead(false);
    }
    channel.writeAndFlush(target.encode(request), channel.voidPromise());
  }

  /**
   * Stops or starts reading the answer: a paused answer waits in the socket, and once the socket's
   * buffers are full, in the upstream. A paused request is not silent, so the sweep leaves it be.
   */
  void hold(UpstreamCall held, boolean pause) {
    if (!channel.eventLoop().inEventLoop()) {
      channel.eventLoop().execute(() -> hold(held, pause));
      return;
    }
    if (call == held) {
      channel.config().setAutoRead(!pause);
      lastActivity = System.nanoTime();
    }
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    try {
      UpstreamCall current = call;
      if (current == null) {
        return;
      }
      lastActivity = System.nanoTime();
      if (msg instanceof HttpResponse response) {
        answered = true;
        keepAlive = HttpUtil.isKeepAlive(response);
        current.head(response.status().code(), UpstreamTarget.relayed(response.headers()));
      }
      if (msg instanceof HttpContent content) {
        ByteBuf data = content.content();
        if (data.isReadable()) {
          // Lent: the decoder's buffer is pooled and goes back once this read is over.
          current.lentChunk(data);
        }
        if (content instanceof LastHttpContent) {
          finish(current);
        }
      }
    } finally {
      ReferenceCountUtil.release(msg);
    }
  }

  private void finish(UpstreamCall current) {
    call = null;
    request = null;
    if (!channel.config().isAutoRead()) {
      // An idle connection keeps reading, or it would not see the upstream close it.
      channel.config().setAutoRead(true);
    }
    if (keepAlive && channel.isActive()) {
      home.release(this);
    } else {
      channel.close();
    }
    current.end(null);
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    home.forget(this);
    UpstreamCall current = call;
    BackendRequest lost = request;
    call = null;
    request = null;
    if (current == null) {
      return;
    }
    if (!answered && reused && current.detach()) {
      home.send(lost, current, false);
      return;
    }
    current.end(answered
        ? new Failure(Failures.UPSTREAM_ERROR, "upstream " + target.baseUrl() + " broke off: the connection was closed mid-answer")
        : new Failure(Failures.UPSTREAM_UNREACHABLE, "upstream " + target.baseUrl() + " failed before answering: the connection was closed"));
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    // What went wrong surfaces as the closed connection in channelInactive, with the request's own message.
    ctx.close();
  }

  /** A timeout means the upstream has the request and is slow: the request ends, and is never sent again. */
  void checkSilence(long now, long idleTimeoutNanos) {
    UpstreamCall current = call;
    if (current == null || now - lastActivity < idleTimeoutNanos || !channel.config().isAutoRead()) {
      return;
    }
    call = null;
    request = null;
    channel.close();
    long ms = TimeUnit.NANOSECONDS.toMillis(idleTimeoutNanos);
    current.end(answered
        ? new Failure(Failures.UPSTREAM_ERROR, "upstream " + target.baseUrl() + " went silent mid-answer for " + ms + " ms")
        : new Failure(Failures.UPSTREAM_UNREACHABLE, "upstream " + target.baseUrl() + " did not answer within " + ms + " ms"));
  }

  /**
   * The caller gave up: the answer in flight is cut off with the connection, which cannot carry
   * another. On the loop's next turn, since the cancel may come from inside this connection's read.
   */
  void abortLater(UpstreamCall cancelled) {
    channel.eventLoop().execute(() -> abort(cancelled));
  }

  private void abort(UpstreamCall cancelled) {
    if (call == cancelled) {
      call = null;
      request = null;
      channel.close();
    }
  }
}
