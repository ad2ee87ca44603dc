package io.switchboard.server.llm;

import io.switchboard.worker.WorkerConfig;
import io.vertx.core.net.NetClient;
import io.vertx.core.net.NetServer;
import io.vertx.core.net.NetSocket;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A TCP link in front of a test server for workers to dial, which can misbehave as a network does:
 * stop carrying the workers' bytes (congestion), or break one connection.
 */
final class NetworkLink implements AutoCloseable {
  private final NetServer server;
  /** The workers' ends of the connections carried, in the order they were opened. */
  private final List<NetSocket> fromWorkers = new CopyOnWriteArrayList<>();
  private volatile boolean carrying = true;

  NetworkLink(TestGateway target) {
    NetClient client = target.vertx.createNetClient();
    server = target.vertx.createNetServer().connectHandler(worker -> {
      worker.pause();
      client.connect(target.server.port(), "127.0.0.1").onComplete(connected -> {
        if (connected.failed()) {
          worker.close();
          return;
        }
        NetSocket toServer = connected.result();
        worker.handler(toServer::write);
        toServer.handler(worker::write);
        worker.closeHandler(v -> toServer.close());
        toServer.closeHandler(v -> worker.close());
        fromWorkers.add(worker);
        if (carrying) {
          worker.resume();
        }
      });
    });
    server.listen(0, "127.0.0.1").await();
  }

  /** A worker's settings, with the server's address through this link. */
  WorkerConfig dialedBy(WorkerConfig c) {
    return new WorkerConfig("http://127.0.0.1:" + server.actualPort(), c.clientKey(), c.workerId(), c.workerName(),
        c.maxConcurrency(), c.embeddingBatchSize(), c.reconnectInitial(), c.reconnectMax(), c.modelPollInterval(),
        c.drainTimeout(), c.maxFrameBytes());
  }

  void carry(boolean on) {
    carrying = on;
    fromWorkers.forEach(worker -> {
      if (on) {
        worker.resume();
      } else {
        worker.pause();
      }
    });
  }

  /** Breaks the {@code index}th connection the link carried, both ways. */
  void cut(int index) {
    fromWorkers.get(index).close();
  }

  @Override
  public void close() {
    server.close().await();
    fromWorkers.forEach(NetSocket::close);
  }
}
