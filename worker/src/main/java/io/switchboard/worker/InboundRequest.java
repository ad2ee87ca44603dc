package io.switchboard.worker;

import io.netty.buffer.ByteBuf;
import io.netty.handler.codec.http.HttpHeaders;
import io.switchboard.protocol.DataFrame;
import io.switchboard.protocol.WireCodec;
import io.switchboard.protocol.WorkerMessage;
import io.switchboard.vertx.CallerContext;
import io.switchboard.vertx.VertxInternals;
import io.switchboard.worker.backend.Backend;
import io.switchboard.worker.backend.BackendCall;
import io.switchboard.worker.backend.BackendRequest;
import io.switchboard.worker.backend.Failure;
import io.switchboard.worker.backend.ResponseSink;
import io.vertx.core.Context;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.WebSocket;
import java.util.Map;

/**
 * One request from the server: its body as it arrives, then the backend call, and the answer going
 * back as a head, body frames and an end on the WebSocket the request came on. The answer's writes
 * happen on the agent's context, whichever thread the backend answers on.
 */
final class InboundRequest implements ResponseSink {

  /** What a request asks of the agent that holds it. */
  interface Owner {
    /** Whether the request is still the agent's to answer (not cancelled, its socket still open). */
    boolean current(InboundRequest request);

    /** The request wrote to its socket: the agent checks whether the socket is full. */
    void wrote(InboundRequest request);

    /** The answer ended. */
    void finished(InboundRequest request);

    /** Whether the socket has more queued than it takes. */
    boolean full(WebSocket ws);
  }

  final WebSocket ws;
  final WorkerMessage.Request meta;
  private final Owner owner;
  private final Context context;
  private final int maxFrameBytes;
  private Buffer body;
  private BackendCall call;
  private boolean pausedByServer;
  private boolean pausedBySocket;

  InboundRequest(WebSocket ws, WorkerMessage.Request meta, Owner owner, Context context, int maxFrameBytes) {
    this.ws = ws;
    this.meta = meta;
    this.owner = owner;
    this.context = context;
    this.maxFrameBytes = maxFrameBytes;
  }

  long id() {
    return meta.requestId();
  }

  /** A piece of the body; the request goes to the backend once the whole body is here. */
  void append(Buffer part, Backend backend) {
    if (body == null) {
      body = Buffer.buffer((int) Math.min(meta.bodyLength(), Integer.MAX_VALUE));
    }
    body.appendBuffer(part);
    if (body.length() >= meta.bodyLength()) {
      dispatch(backend);
    }
  }

  void dispatch(Backend backend) {
    Buffer payload = body == null ? Buffer.buffer() : body;
    call = backend.call(new BackendRequest(meta.method(), meta.path(), meta.headers() == null ? Map.of() : meta.headers(),
        meta.stream(), payload), this);
    if (owner.full(ws)) {
      socketFull(true);
    }
  }

  void cancel() {
    if (call != null) {
      call.cancel();
    }
  }

  /** The server's client is slower than the upstream: the answer waits at the upstream meanwhile. */
  void hold(boolean pause) {
    pausedByServer = pause;
    applyHold();
  }

  /**
   * Its WebSocket to the server has more queued than it takes: every answer on it waits at its
   * upstream until it drains, or this worker would queue whatever its upstreams send faster than that.
   */
  void socketFull(boolean full) {
    pausedBySocket = full;
    applyHold();
  }

  private void applyHold() {
    if (call != null) {
      call.hold(pausedByServer || pausedBySocket);
    }
  }

  @Override
  public void head(int status, HttpHeaders headers) {
    CallerContext.run(context, () -> {
      if (owner.current(this)) {
        ws.writeTextMessage(WireCodec.encode(WorkerMessage.ResponseHead.of(meta.requestId(), status, headers)));
      }
    });
  }

  @Override
  public void chunk(Buffer data) {
    CallerContext.run(context, () -> send(data));
  }

  /** On the agent's thread the lent bytes go straight into their frames, which copy them; elsewhere they are copied first. */
  @Override
  public void lentChunk(ByteBuf bytes) {
    if (VertxInternals.onThread(context)) {
      send(VertxInternals.buffer(bytes));
    } else {
      ResponseSink.super.lentChunk(bytes);
    }
  }

  private void send(Buffer data) {
    if (!owner.current(this)) {
      return;
    }
    int max = maxFrameBytes - DataFrame.HEADER_BYTES;
    for (int offset = 0; offset < data.length(); offset += max) {
      Buffer part = data.slice(offset, Math.min(data.length(), offset + max));
      ws.writeBinaryMessage(DataFrame.encode(DataFrame.Kind.RESPONSE_BODY, meta.requestId(), part));
    }
    owner.wrote(this);
  }

  @Override
  public void end(Failure failure) {
    CallerContext.run(context, () -> {
      if (!owner.current(this)) {
        return;
      }
      ws.writeTextMessage(WireCodec.encode(new WorkerMessage.ResponseEnd(meta.requestId(),
          failure == null ? null : failure.code(), failure == null ? null : failure.message())));
      owner.finished(this);
    });
  }
}
