package io.switchboard.bench;

import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpObject;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.util.ReferenceCountUtil;
import java.util.ArrayDeque;

/**
 * The least a reverse proxy on the JVM can cost: Netty's HTTP codecs, one upstream connection
 * pool per event loop, answers relayed as they arrive, and nothing else (no keys, routing, metrics
 * or limits). bench/run.py measures it beside Switchboard, so a gap between the two is
 * Switchboard's own, and a gap between this and nginx is the JVM's and Netty's.
 *
 * <p>Usage: {@code java -cp switchboard-bench.jar io.switchboard.bench.NettyFloor PORT UPSTREAM_PORT LOOPS}
 */
public final class NettyFloor {

  /** Idle upstream connections of the event loop that runs the calling thread. */
  private static final ThreadLocal<ArrayDeque<Channel>> IDLE = ThreadLocal.withInitial(ArrayDeque::new);

  private final int upstreamPort;

  private NettyFloor(int upstreamPort) {
    this.upstreamPort = upstreamPort;
  }

  public static void main(String[] args) throws InterruptedException {
    int port = Integer.parseInt(args[0]);
    NettyFloor floor = new NettyFloor(Integer.parseInt(args[1]));
    EventLoopGroup loops = new MultiThreadIoEventLoopGroup(Integer.parseInt(args[2]), EpollIoHandler.newFactory());
    // Connections are accepted on a thread of their own, as Vert.x does: on a busy loop, 256 new
    // connections were taken 16 a turn and waited up to 2 s to be read.
    EventLoopGroup acceptor = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
    new ServerBootstrap().group(acceptor, loops).channel(EpollServerSocketChannel.class)
        .childOption(ChannelOption.TCP_NODELAY, true)
        .childHandler(new ChannelInitializer<SocketChannel>() {
          @Override
          protected void initChannel(SocketChannel client) {
            client.pipeline().addLast(new HttpServerCodec(), new HttpObjectAggregator(1 << 20), floor.new ClientSide());
          }
        })
        .bind("127.0.0.1", port).sync().channel().closeFuture().sync();
  }

  /** Takes a whole request and sends it upstream on an idle connection of the same loop. */
  private final class ClientSide extends SimpleChannelInboundHandler<FullHttpRequest> {
    @Override
    protected void channelRead0(ChannelHandlerContext ctx, FullHttpRequest request) {
      Channel client = ctx.channel();
      FullHttpRequest forward = request.retainedDuplicate();
      forward.headers().set(HttpHeaderNames.HOST, "127.0.0.1:" + upstreamPort);
      Channel idle = IDLE.get().pollLast();
      if (idle != null && idle.isActive()) {
        send(idle, client, forward);
        return;
      }
      new Bootstrap().group(client.eventLoop()).channel(EpollSocketChannel.class).option(ChannelOption.TCP_NODELAY, true)
          .handler(new ChannelInitializer<SocketChannel>() {
            @Override
            protected void initChannel(SocketChannel upstream) {
              upstream.pipeline().addLast(new HttpClientCodec(), new UpstreamSide());
            }
          })
          .connect("127.0.0.1", upstreamPort)
          .addListener((ChannelFutureListener) connected -> {
            if (connected.isSuccess()) {
              send(connected.channel(), client, forward);
            } else {
              forward.release();
              client.close();
            }
          });
    }

    private void send(Channel upstream, Channel client, FullHttpRequest forward) {
      ((UpstreamSide) upstream.pipeline().last()).client = client;
      upstream.writeAndFlush(forward);
    }
  }

  /** Relays one answer at a time to the client it is for, flushing each piece of content. */
  private static final class UpstreamSide extends SimpleChannelInboundHandler<HttpObject> {
    private Channel client;

    UpstreamSide() {
      super(false);
    }

    @Override
    protected void channelRead0(ChannelHandlerContext ctx, HttpObject piece) {
      Channel to = client;
      if (piece instanceof LastHttpContent) {
        client = null;
        IDLE.get().addLast(ctx.channel());
      }
      if (to == null || !to.isActive()) {
        ReferenceCountUtil.release(piece);
      } else if (piece instanceof HttpContent) {
        to.writeAndFlush(piece);
      } else {
        to.write(piece);
      }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      IDLE.get().remove(ctx.channel());
      if (client != null) {
        client.close();
      }
    }
  }
}
