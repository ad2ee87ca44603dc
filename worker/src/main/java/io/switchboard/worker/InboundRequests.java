package io.switchboard.worker;

import io.switchboard.protocol.DataFrame;
import io.switchboard.protocol.WorkerMessage;
import io.switchboard.worker.backend.Backend;
import io.vertx.core.Context;
import io.vertx.core.http.WebSocket;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;

/**
 * The requests a worker runs, by id: each one's body as it arrives, the server's cancels and
 * pauses, and the answers held back at their upstreams while the WebSocket they go back on is full.
 * Touched on the agent's context only.
 */
final class InboundRequests implements InboundRequest.Owner {

  private final Backend backend;
  private final Context context;
  private final int maxFrameBytes;
  /** Whether a WebSocket still carries answers: the agent's first connection or one of its lanes. */
  private final Predicate<WebSocket> open;
  /** Called when a request ends: the agent may be waiting for the last one to drain. */
  private final Runnable ended;
  private final Map<Long, InboundRequest> active = new HashMap<>();
  /** WebSockets whose write queue is full: the answers they carry wait at their upstreams until it drains. */
  private final Set<WebSocket> fullSockets = new HashSet<>();

  InboundRequests(Backend backend, Context context, int maxFrameBytes, Predicate<WebSocket> open, Runnable ended) {
    this.backend = backend;
    this.context = context;
    this.maxFrameBytes = maxFrameBytes;
    this.open = open;
    this.ended = ended;
  }

  int size() {
    return active.size();
  }

  boolean isEmpty() {
    return active.isEmpty();
  }

  /** A new request on {@code ws}; it runs once its body is here (at once when it has none). */
  void add(WebSocket ws, WorkerMessage.Request meta) {
    InboundRequest request = new InboundRequest(ws, meta, this, context, maxFrameBytes);
    active.put(meta.requestId(), request);
    if (meta.bodyLength() == 0) {
      request.dispatch(backend);
    }
  }

  void body(DataFrame frame) {
    InboundRequest request = active.get(frame.requestId());
    if (request != null && frame.kind() == DataFrame.Kind.REQUEST_BODY) {
      request.append(frame.payload(), backend);
    }
  }

  /** The server's client went away: the request stops, and its answer with it. */
  void cancel(long id) {
    InboundRequest request = active.remove(id);
    if (request != null) {
      request.cancel();
      ended.run();
    }
  }

  /** The server's client reads slower than the answer comes: it waits at the upstream meanwhile. */
  void hold(long id, boolean pause) {
    InboundRequest request = active.get(id);
    if (request != null) {
      request.hold(pause);
    }
  }

  /** Every request stops: the connection is gone, or the worker leaves. */
  void cancelAll() {
    active.values().forEach(InboundRequest::cancel);
    active.clear();
    fullSockets.clear();
  }

  /** A lane closed: the requests it carried stop; how many there were. */
  int cancelOn(WebSocket lane) {
    fullSockets.remove(lane);
    List<InboundRequest> lost = active.values().stream().filter(request -> request.ws == lane).toList();
    lost.forEach(request -> {
      active.remove(request.id());
      request.cancel();
    });
    return lost.size();
  }

  /**
   * The WebSocket took what was queued on it: answers held back while it was full are read from
   * their upstreams again, unless the server paused them itself.
   */
  void drained(WebSocket ws) {
    if (fullSockets.remove(ws)) {
      active.values().stream().filter(request -> request.ws == ws).forEach(request -> request.socketFull(false));
    }
  }

  @Override
  public boolean current(InboundRequest request) {
    return active.get(request.id()) == request && open.test(request.ws);
  }

  /** Once its WebSocket is full, every answer on it waits for it to drain. */
  @Override
  public void wrote(InboundRequest writer) {
    WebSocket ws = writer.ws;
    if (!ws.writeQueueFull()) {
      return;
    }
    if (fullSockets.add(ws)) {
      active.values().stream().filter(request -> request.ws == ws).forEach(request -> request.socketFull(true));
    } else {
      writer.socketFull(true);
    }
  }

  @Override
  public void finished(InboundRequest request) {
    active.remove(request.id());
    ended.run();
  }

  @Override
  public boolean full(WebSocket ws) {
    return fullSockets.contains(ws);
  }
}
