package io.switchboard.vertx;

import io.netty.bootstrap.ChannelFactory;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.resolver.AddressResolverGroup;
import io.netty.util.concurrent.EventExecutor;
import io.netty.util.internal.ThreadExecutorMap;
import io.vertx.core.Context;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.WebSocket;
import io.vertx.core.internal.ContextInternal;
import io.vertx.core.internal.VertxInternal;
import io.vertx.core.internal.buffer.BufferInternal;
import io.vertx.core.internal.http.WebSocketInternal;
import io.vertx.core.net.impl.ConnectionBase;
import java.net.SocketAddress;

/**
 * The one place that reaches below Vert.x's public API (its {@code internal} and {@code impl}
 * packages, and one Netty internal), so that an upgrade of Vert.x is checked here and nowhere else.
 * Each method says what the public API lacks.
 */
public final class VertxInternals {

  private VertxInternals() {}

  /**
   * The Netty buffer under a Vert.x buffer. Public {@link Buffer} offers only copies; the proxy path
   * hands the same bytes from one socket to another without one.
   */
  public static ByteBuf byteBuf(Buffer buffer) {
    return ((BufferInternal) buffer).getByteBuf();
  }

  /** A Vert.x buffer over Netty bytes, without the copy that {@code Buffer.buffer(byte[])} makes. */
  public static Buffer buffer(ByteBuf bytes) {
    return BufferInternal.buffer(bytes);
  }

  /**
   * The Netty pipeline end of an HTTP connection, or null for a connection that is not Vert.x's own
   * kind. The public API has no way to add a handler to a connection (the inference fast path, the
   * h2c hold, flush coalescing).
   */
  public static ChannelHandlerContext channel(HttpConnection connection) {
    return connection instanceof ConnectionBase base ? base.channelHandlerContext() : null;
  }

  /** The same for a client WebSocket. */
  public static ChannelHandlerContext channel(WebSocket ws) {
    return ws instanceof WebSocketInternal internal ? internal.channelHandlerContext() : null;
  }

  /**
   * A promise whose listeners run on the calling thread's context, whichever thread completes it.
   * Public {@link Promise#promise()} runs them on the completing thread, which under strict thread
   * mode may not write to the caller's connection.
   */
  public static <T> Promise<T> promiseOnCaller(Vertx vertx) {
    return ((ContextInternal) vertx.getOrCreateContext()).promise();
  }

  /** Whether the current thread is {@code context}'s own; public {@link Context} cannot tell. */
  public static boolean onThread(Context context) {
    return ((ContextInternal) context).inThread();
  }

  /**
   * The event loop the current thread runs, when it is one of {@code vertx}'s, else any of them.
   * Netty publishes the current executor only through {@link ThreadExecutorMap}, and Vert.x its loops
   * only through its internal interface.
   */
  public static EventLoop callingLoop(Vertx vertx) {
    EventLoopGroup loops = ((VertxInternal) vertx).nettyEventLoopGroup();
    EventExecutor current = ThreadExecutorMap.currentExecutor();
    if (current instanceof EventLoop loop && loop.parent() == loops) {
      return loop;
    }
    return loops.next();
  }

  /** The socket channels of the transport Vert.x runs on (epoll, io_uring or NIO), for a Netty client of our own. */
  public static ChannelFactory<? extends Channel> socketChannels(Vertx vertx) {
    return ((VertxInternal) vertx).transport().channelFactory(false);
  }

  /** Vert.x's resolver, which looks names up without blocking an event loop, for a Netty client of our own. */
  public static AddressResolverGroup<? extends SocketAddress> resolver(Vertx vertx) {
    return ((VertxInternal) vertx).nameResolver().nettyAddressResolverGroup();
  }
}
