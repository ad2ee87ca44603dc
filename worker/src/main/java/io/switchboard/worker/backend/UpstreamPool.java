package io.switchboard.worker.backend;

import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.concurrent.ScheduledFuture;
import io.switchboard.protocol.Failures;
import io.switchboard.vertx.VertxInternals;
import io.vertx.core.Vertx;
import java.util.ArrayDeque;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLParameters;

/**
 * One event loop's connections to one upstream; touched by that loop only. Idle ones are kept most
 * recently used first, and leave the pool when the upstream closes them or when they have sat unused
 * for longer than they may be kept; one sweep per loop does that and times out the requests that
 * went silent.
 */
final class UpstreamPool {
  private static final int CONNECT_TIMEOUT_MS = 5_000;
  /** Idle connections kept beyond this many are closed: a burst should not pin sockets forever. */
  private static final int MAX_IDLE = 512;

  final EventLoop loop;
  private final UpstreamTarget target;
  private final long idleTimeoutNanos;
  private final long keepIdleNanos;
  private final Bootstrap bootstrap;
  private final ArrayDeque<UpstreamConnection> idle = new ArrayDeque<>();
  private final Set<UpstreamConnection> open = new HashSet<>();
  private final ScheduledFuture<?> sweep;
  private boolean closed;

  /**
   * @param idleTimeoutNanos how long the upstream may stay silent during one request
   * @param keepIdleNanos how long a connection may sit unused before it is closed
   */
  UpstreamPool(Vertx vertx, EventLoop loop, UpstreamTarget target, long idleTimeoutNanos, long keepIdleNanos) {
    this.loop = loop;
    this.target = target;
    this.idleTimeoutNanos = idleTimeoutNanos;
    this.keepIdleNanos = keepIdleNanos;
    this.bootstrap = new Bootstrap().group(loop).channelFactory(VertxInternals.socketChannels(vertx))
        .option(ChannelOption.TCP_NODELAY, true)
        .option(ChannelOption.SO_KEEPALIVE, true)
        .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, CONNECT_TIMEOUT_MS)
        // Vert.x's resolver looks names up without blocking the loop, as its own clients do.
        .resolver(VertxInternals.resolver(vertx));
    long every = Math.clamp(Math.min(idleTimeoutNanos, keepIdleNanos) / 4, TimeUnit.MILLISECONDS.toNanos(50), TimeUnit.SECONDS.toNanos(1));
    this.sweep = loop.scheduleAtFixedRate(this::sweep, every, every, TimeUnit.NANOSECONDS);
  }

  /**
   * Runs the request on an idle connection of this loop, or on a new one. A reused connection may
   * have been closed by the upstream while it sat idle; a request that fails on one before any
   * answer because the connection closed is tried once more on a new connection.
   */
  void send(BackendRequest request, UpstreamCall call, boolean mayReuse) {
    if (call.isOver()) {
      return;
    }
    UpstreamConnection reused = mayReuse ? idle.pollFirst() : null;
    if (reused != null) {
      reused.start(request, call, true);
      return;
    }
    connect().addListener((ChannelFuture connected) -> {
      if (connected.isSuccess()) {
        connected.channel().pipeline().get(UpstreamConnection.class).start(request, call, false);
      } else {
        call.end(new Failure(Failures.UPSTREAM_UNREACHABLE, "cannot reach upstream " + target.baseUrl() + ": "
            + connected.cause().getMessage()));
      }
    });
  }

  private ChannelFuture connect() {
    Bootstrap connecting = bootstrap.clone().handler(new ChannelInitializer<Channel>() {
      @Override
      protected void initChannel(Channel channel) {
        if (target.ssl() != null) {
          SSLEngine engine = target.ssl().newEngine(channel.alloc(), target.host(), target.port());
          SSLParameters parameters = engine.getSSLParameters();
          parameters.setEndpointIdentificationAlgorithm("HTTPS");
          engine.setSSLParameters(parameters);
          channel.pipeline().addLast(new SslHandler(engine));
        }
        channel.pipeline().addLast(new HttpClientCodec(), new UpstreamConnection(UpstreamPool.this, target, channel));
      }
    });
    return connecting.connect(target.host(), target.port());
  }

  void release(UpstreamConnection connection) {
    if (idle.size() < MAX_IDLE && !closed) {
      connection.idleSince = System.nanoTime();
      idle.addFirst(connection);
    } else {
      connection.channel.close();
    }
  }

  void opened(UpstreamConnection connection) {
    open.add(connection);
  }

  /** The connection closed, whoever closed it (an upstream ends idle keep-alive connections too): it is out of the pool. */
  void forget(UpstreamConnection connection) {
    open.remove(connection);
    idle.remove(connection);
  }

  /** Ends the requests that went silent, and closes the connections unused for longer than they may be kept. */
  private void sweep() {
    long now = System.nanoTime();
    for (UpstreamConnection connection : List.copyOf(open)) {
      connection.checkSilence(now, idleTimeoutNanos);
    }
    // The most recently released are at the head: the oldest, at the tail, go first.
    for (UpstreamConnection oldest = idle.peekLast(); oldest != null && now - oldest.idleSince >= keepIdleNanos;
        oldest = idle.peekLast()) {
      idle.pollLast();
      oldest.channel.close();
    }
  }

  void closeAll() {
    closed = true;
    sweep.cancel(false);
    idle.clear();
    List.copyOf(open).forEach(connection -> connection.channel.close());
  }
}
