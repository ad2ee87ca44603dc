package io.switchboard.protocol;

import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.flush.FlushConsolidationHandler;
import io.switchboard.vertx.VertxInternals;
import io.vertx.core.http.WebSocket;

/**
 * Makes the frames written to a worker's WebSocket in one turn of its event loop leave
 * in one system call. Vert.x flushes each frame written outside a read of that same socket, and an
 * answer is three frames (head, body, end) written while the upstream's socket is read: three
 * {@code writev} calls where one does. Netty's {@link FlushConsolidationHandler} holds those flushes
 * until the loop has run what it was doing, then flushes once.
 */
public final class FlushCoalescing {

  /** Flushes at once after this many held ones, so that a long burst still goes out as it is made. */
  private static final int MAX_HELD_FLUSHES = 64;

  private FlushCoalescing() {}

  /** Installs it on {@code ws}; does nothing on a socket that is not Vert.x's own kind. */
  public static void enable(WebSocket ws) {
    ChannelHandlerContext channel = VertxInternals.channel(ws);
    if (channel != null) {
      channel.pipeline().addFirst("flush-coalescing", new FlushConsolidationHandler(MAX_HELD_FLUSHES, true));
    }
  }
}
