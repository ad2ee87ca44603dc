package io.switchboard.server.llm;

import io.switchboard.worker.WorkerConfig;
import io.vertx.core.Context;
import io.vertx.core.Handler;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.net.NetClient;
import io.vertx.core.net.NetServer;
import io.vertx.core.net.NetSocket;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

/**
 * A TCP link in front of a test server for workers to dial, which can misbehave as a network does:
 * stop carrying the workers' bytes (congestion), break one connection, or hold a worker's first
 * WebSocket message (its {@code register}) in flight for as long as a test needs.
 */
final class NetworkLink implements AutoCloseable {
  private final NetServer server;
  /** The workers' ends of the connections carried, in the order they were opened. */
  private final List<NetSocket> fromWorkers = new CopyOnWriteArrayList<>();
  private volatile boolean carrying = true;
  private volatile Hold hold;

  /** The first message a new connection sends after its upgrade, held until {@link #release}. */
  private static final class Hold {
    final Promise<Void> caught = Promise.promise();
    final Buffer bytes = Buffer.buffer();
    Runnable release;
  }

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
        worker.handler(new Forwarder(toServer));
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

  /**
   * Holds the next {@code register} message a worker sends after its upgrade, and whatever that
   * connection sends after it: the message is then on the wire but not delivered.
   */
  void holdNextFirstMessage() {
    hold = new Hold();
  }

  /** Waits until the held message has been sent by the worker and caught here. */
  void awaitHeld() throws Exception {
    hold.caught.future().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
  }

  /** Delivers what was held, and carries that connection as usual from then on. */
  void release() {
    Hold held = hold;
    hold = null;
    held.release.run();
  }

  /**
   * Carries a worker's bytes to the server, watching for the end of its upgrade request so that a
   * hold can catch the first message after it.
   */
  private final class Forwarder implements Handler<Buffer> {
    private final NetSocket toServer;
    private final StringBuilder upgrade = new StringBuilder();
    private Hold holding;
    private boolean upgraded;
    private boolean caughtFirst;

    Forwarder(NetSocket toServer) {
      this.toServer = toServer;
    }

    @Override
    public void handle(Buffer data) {
      if (holding != null) {
        holding.bytes.appendBuffer(data);
        holding.caught.tryComplete();
        return;
      }
      if (upgraded) {
        if (caughtFirst) {
          toServer.write(data);
        } else {
          firstMessage(data);
        }
        return;
      }
      upgrade.append(data.toString(StandardCharsets.ISO_8859_1));
      int end = upgrade.indexOf("\r\n\r\n");
      if (end < 0) {
        toServer.write(data);
        return;
      }
      upgraded = true;
      int headerBytesHere = data.length() - (upgrade.length() - end - 4);
      toServer.write(data.slice(0, headerBytesHere));
      if (headerBytesHere < data.length()) {
        handle(data.slice(headerBytesHere, data.length()));
      }
    }

    /** The first message after the upgrade: held if it is a {@code register}, else carried, with this connection from then on. */
    private void firstMessage(Buffer data) {
      caughtFirst = true;
      Hold mine = hold;
      if (mine == null || mine.release != null || !isRegister(data)) {
        toServer.write(data);
        return;
      }
      Context here = Vertx.currentContext();
      mine.release = () -> here.runOnContext(v -> {
        toServer.write(mine.bytes);
        holding = null;
      });
      holding = mine;
      handle(data);
    }
  }

  /** Whether a client's (masked) WebSocket frame carries a {@code register} message. */
  private static boolean isRegister(Buffer frame) {
    if (frame.length() < 6) {
      return false;
    }
    int length = frame.getByte(1) & 0x7f;
    int maskAt = length == 126 ? 4 : length == 127 ? 10 : 2;
    byte[] text = new byte[Math.min(48, frame.length() - maskAt - 4)];
    for (int i = 0; i < text.length; i++) {
      text[i] = (byte) (frame.getByte(maskAt + 4 + i) ^ frame.getByte(maskAt + (i & 3)));
    }
    return new String(text, StandardCharsets.ISO_8859_1).contains("\"register\"");
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
