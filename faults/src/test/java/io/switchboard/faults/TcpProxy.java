package io.switchboard.faults;

import io.vertx.core.Vertx;
import io.vertx.core.net.NetClient;
import io.vertx.core.net.NetServer;
import io.vertx.core.net.NetSocket;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A TCP proxy on a fixed port in front of a service, which can go down as a restarting service
 * does: every connection dropped, new ones refused, then back on the same port.
 */
final class TcpProxy implements AutoCloseable {
  private final Vertx vertx;
  private final NetClient client;
  private final int targetPort;
  private final Set<NetSocket> open = ConcurrentHashMap.newKeySet();
  private NetServer server;
  private int port;

  TcpProxy(Vertx vertx, int targetPort) {
    this.vertx = vertx;
    this.targetPort = targetPort;
    this.client = vertx.createNetClient();
    up();
  }

  int port() {
    return port;
  }

  /** Listens (again) on the proxy's port. */
  void up() {
    server = vertx.createNetServer().connectHandler(in -> {
      in.pause();
      open.add(in);
      client.connect(targetPort, "127.0.0.1").onComplete(ar -> {
        if (ar.failed()) {
          in.close();
          return;
        }
        NetSocket out = ar.result();
        open.add(out);
        in.handler(out::write);
        out.handler(in::write);
        in.closeHandler(v -> out.close());
        out.closeHandler(v -> in.close());
        in.resume();
      });
    });
    server.listen(port, "127.0.0.1").await();
    port = server.actualPort();
  }

  /** Stops listening and drops every connection, both ways. */
  void down() {
    server.close().await();
    open.forEach(NetSocket::close);
    open.clear();
  }

  @Override
  public void close() {
    down();
    client.close().await();
  }
}
