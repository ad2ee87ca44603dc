package io.switchboard.server.http;

import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPipeline;
import io.switchboard.vertx.VertxInternals;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpVersion;

/**
 * Holds an upgraded h2c connection's answer back until the client has spoken HTTP/2.
 *
 * <p>Vert.x answers the request that asked for the upgrade at once, so the {@code 101}, the server's
 * SETTINGS and the answer's frames can reach the client in one burst. The JDK's {@code HttpClient}
 * (its default for {@code http://} URLs is an h2c upgrade) misreads such a burst some of the time:
 * a frame header read from the middle of a DATA frame, "protocol error: Frame type(78) ... exceeds
 * MAX_FRAME_SIZE". It reads the answer whole when the {@code 101} and SETTINGS come first and the
 * rest after its connection preface, which a client sends as soon as it has the {@code 101}.
 */
public final class H2cUpgradeHold extends ChannelDuplexHandler {

  private boolean flushHeld;

  private H2cUpgradeHold() {}

  /**
   * Installs the hold on {@code connection} when it is an HTTP/2 connection that an h2c upgrade has
   * just made: Vert.x's upgrade handler ({@code h2c}) is still in its pipeline then.
   */
  public static void install(HttpConnection connection) {
    ChannelHandlerContext channel = VertxInternals.channel(connection);
    if (connection.protocolVersion() == HttpVersion.HTTP_2 && channel != null) {
      ChannelPipeline pipeline = channel.pipeline();
      if (pipeline.get("h2c") != null) {
        pipeline.addFirst("switchboard-h2c-hold", new H2cUpgradeHold());
      }
    }
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) {
    // The 101 and the SETTINGS are written, not yet sent: they go now, on their own. The client
    // answers them with at least a SETTINGS acknowledgement, so the hold always ends.
    ctx.flush();
  }

  @Override
  public void flush(ChannelHandlerContext ctx) {
    flushHeld = true;
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (flushHeld) {
      ctx.flush();
    }
    ctx.pipeline().remove(this);
    ctx.fireChannelRead(msg);
  }
}
