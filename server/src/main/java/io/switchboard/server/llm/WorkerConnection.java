package io.switchboard.server.llm;

import io.netty.util.concurrent.EventExecutor;
import io.switchboard.protocol.CloseCodes;
import io.switchboard.protocol.DataFrame;
import io.switchboard.protocol.Failures;
import io.switchboard.protocol.WireCodec;
import io.switchboard.protocol.WorkerMessage;
import io.switchboard.server.auth.Authenticator;
import io.switchboard.server.http.AgentSocket;
import io.switchboard.worker.backend.Backend;
import io.switchboard.worker.backend.BackendCall;
import io.switchboard.worker.backend.BackendRequest;
import io.switchboard.worker.backend.Failure;
import io.switchboard.worker.backend.ResponseSink;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.ServerWebSocket;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One dialed-in worker's WebSocket, seen from the server. It checks the {@code register} message,
 * adds the worker to the router, and is the {@link Backend} through which requests reach it: each
 * request gets an id, its body goes as binary frames, and the answer comes back as a head, body
 * frames and an end.
 *
 * <p>A worker may open further WebSockets, its lanes, one per event loop of the server. A request is
 * sent down the lane on its client's loop when there is one, so that neither it nor its answer
 * crosses between loops; on the first connection otherwise.
 */
final class WorkerConnection implements Backend, AgentSocket.Agent {

  private static final Logger log = LoggerFactory.getLogger(WorkerConnection.class);

  /** What a connection needs from the server. */
  record Settings(long heartbeatMs, int maxFrameBytes, int lanes) {}

  private final ServerWebSocket ws;
  private final AgentSocket socket;
  private final LlmRouter router;
  private final Settings settings;
  private final Map<Long, ResponseSink> pending = new ConcurrentHashMap<>();
  private final List<WorkerConnection> lanes = new CopyOnWriteArrayList<>();
  /** The event loop this connection's socket is on. */
  private final EventExecutor loop;
  /** Request ids, for this connection and its lanes: the worker knows a request by its id alone. */
  private final AtomicLong ids = new AtomicLong();
  private volatile Worker worker;
  /** Set on a lane: the worker's first connection. */
  private volatile WorkerConnection first;

  /** {@code loop} is the event loop the socket is on, or null where that is not known (no lanes then). */
  WorkerConnection(Vertx vertx, ServerWebSocket ws, EventExecutor loop, LlmRouter router, Authenticator auth, Settings settings) {
    this.ws = ws;
    this.router = router;
    this.settings = settings;
    this.loop = loop;
    this.socket = new AgentSocket(vertx, ws, "worker", auth, settings.heartbeatMs(), this);
  }

  void start() {
    ws.textMessageHandler(this::onText);
    ws.binaryMessageHandler(this::onBinary);
    ws.exceptionHandler(e -> log.debug("worker connection error: {}", e.getMessage()));
    ws.closeHandler(v -> onClosed());
  }

  @Override
  public boolean registered() {
    return worker != null || first != null;
  }

  @Override
  public void dropped() {
    onClosed();
  }

  @Override
  public String describe() {
    return first == null ? String.valueOf(owner()) : "a lane of " + owner();
  }

  @Override
  public void beat() {
    send(new WorkerMessage.Heartbeat(System.currentTimeMillis()));
  }

  /** The worker this connection belongs to: its own, or its first connection's for a lane. */
  private Worker owner() {
    WorkerConnection primary = first;
    return primary == null ? worker : primary.worker;
  }

  private void onText(String text) {
    socket.heard();
    Worker registered = owner();
    if (registered != null) {
      registered.heard();
    }
    WorkerMessage message;
    try {
      message = WireCodec.decode(text);
    } catch (IllegalArgumentException e) {
      if (!registered()) {
        socket.reject(CloseCodes.BAD_REGISTER, "first message must be a register message");
      } else {
        log.warn("{} sent an unreadable message: {}", registered, e.getMessage());
      }
      return;
    }
    if (!registered()) {
      switch (message) {
        case WorkerMessage.Register register -> onRegister(register);
        case WorkerMessage.Lane lane -> onLane(lane);
        default -> socket.reject(CloseCodes.BAD_REGISTER, "first message must be a register message");
      }
      return;
    }
    switch (message) {
      case WorkerMessage.ResponseHead head -> {
        ResponseSink sink = pending.get(head.requestId());
        if (sink != null) {
          sink.head(head.status(), head.httpHeaders());
        }
      }
      case WorkerMessage.ResponseEnd end -> {
        ResponseSink sink = pending.remove(end.requestId());
        if (sink != null) {
          sink.end(end.error() == null ? null : new Failure(end.error(), Objects.requireNonNullElse(end.message(), end.error())));
        }
      }
      case WorkerMessage.StatusUpdate update when first == null -> {
        WorkerMessage.Status status = update.status();
        if (status != null && status != WorkerMessage.Status.DRAINING) {
          worker.loading(status == WorkerMessage.Status.LOADING);
        }
        router.update(worker, update.models(), update.maxConcurrency(), status == null ? null : status == WorkerMessage.Status.DRAINING);
      }
      case WorkerMessage.Heartbeat h -> { }
      default -> log.warn("{} sent an unexpected {}", owner(), message.getClass().getSimpleName());
    }
  }

  private void onBinary(Buffer data) {
    socket.heard();
    DataFrame frame;
    try {
      frame = DataFrame.decode(data);
    } catch (IllegalArgumentException e) {
      log.warn("{} sent a bad data frame: {}", owner(), e.getMessage());
      return;
    }
    ResponseSink sink = pending.get(frame.requestId());
    if (sink != null && frame.kind() == DataFrame.Kind.RESPONSE_BODY) {
      sink.chunk(frame.payload());
    }
  }

  private void onRegister(WorkerMessage.Register register) {
    if (!socket.admit(register.clientKey())) {
      return;
    }
    String id = register.workerId() == null || register.workerId().isBlank()
        ? UUID.randomUUID().toString() : register.workerId();
    String name = register.workerName() == null || register.workerName().isBlank()
        ? id.substring(0, Math.min(8, id.length())) : register.workerName();
    int concurrency = register.maxConcurrency() == null ? 4 : Math.max(0, register.maxConcurrency());
    int batch = register.embeddingBatchSize() == null ? 0 : Math.max(0, register.embeddingBatchSize());
    Worker joined = new Worker(id, name, false, this,
        register.models() == null ? List.of() : register.models(), concurrency, batch);
    worker = joined;
    send(new WorkerMessage.Registered(id, settings.heartbeatMs(), settings.lanes() > 1 ? settings.lanes() : null));
    router.register(joined).ifPresent(old -> {
      if (old.backend() instanceof WorkerConnection previous) {
        previous.replaced();
      }
    });
  }

  private void onLane(WorkerMessage.Lane lane) {
    if (!socket.admit(lane.clientKey())) {
      return;
    }
    WorkerConnection primary = lane.workerId() == null ? null : router.worker(lane.workerId())
        .map(Worker::backend).filter(WorkerConnection.class::isInstance).map(WorkerConnection.class::cast).orElse(null);
    if (primary == null) {
      socket.reject(CloseCodes.BAD_REGISTER, "no connected worker " + lane.workerId() + " to add a lane to");
      return;
    }
    switch (primary.addLane(this)) {
      case ADDED -> log.debug("{} opened lane {} of {}", primary.worker, primary.lanes.size() + 1, settings.lanes());
      case LOOP_TAKEN -> ws.close(CloseCodes.LANE_TAKEN, "a connection of this worker is on that event loop already");
      case REFUSED -> socket.reject(CloseCodes.BAD_REGISTER, "the worker is gone or holds a connection on every event loop");
    }
  }

  private enum LaneAnswer { ADDED, LOOP_TAKEN, REFUSED }

  /**
   * Takes a lane on, unless this connection is gone or has all the lanes the server's loops can use,
   * or the lane is on a loop that one of the worker's connections is on already (it serves no client
   * that the other does not).
   */
  private synchronized LaneAnswer addLane(WorkerConnection lane) {
    if (socket.ended() || first != null || lanes.size() + 1 >= settings.lanes()) {
      return LaneAnswer.REFUSED;
    }
    if (lane.loop == null || lane.loop == loop || lanes.stream().anyMatch(other -> other.loop == lane.loop)) {
      return LaneAnswer.LOOP_TAKEN;
    }
    lane.first = this;
    lanes.add(lane);
    return LaneAnswer.ADDED;
  }

  private void replaced() {
    socket.replace("worker id");
    failPending();
    closeLanes();
  }

  private synchronized void closeLanes() {
    lanes.forEach(lane -> lane.ws.close(CloseCodes.NORMAL, "the worker's first connection is gone"));
    lanes.clear();
  }

  private void onClosed() {
    if (!socket.end()) {
      return;
    }
    WorkerConnection primary = first;
    if (primary != null) {
      primary.lanes.remove(this);
    }
    Worker gone = worker;
    if (gone != null) {
      router.remove(gone);
      closeLanes();
    }
    failPending();
  }

  private void failPending() {
    for (Long id : List.copyOf(pending.keySet())) {
      ResponseSink sink = pending.remove(id);
      if (sink != null) {
        sink.end(new Failure(Failures.WORKER_LOST, "connection to " + owner() + " was lost"));
      }
    }
  }

  /** The worker's WebSockets: this one, then its lanes. */
  List<WorkerConnection> connections() {
    List<WorkerConnection> all = new ArrayList<>(1 + lanes.size());
    all.add(this);
    all.addAll(lanes);
    return all;
  }

  /** Requests sent down this WebSocket that have not ended yet. */
  int inFlight() {
    return pending.size();
  }

  /** Asks the worker to drain; the router stops sending it requests at once. */
  void drain() {
    send(new WorkerMessage.Drain());
  }

  @Override
  public BackendCall call(BackendRequest request, ResponseSink sink) {
    return laneHere().send(ids.incrementAndGet(), request, sink);
  }

  /** The lane on the calling thread's event loop, or this first connection when none is. */
  private WorkerConnection laneHere() {
    if (loop == null || loop.inEventLoop()) {
      return this;
    }
    for (WorkerConnection lane : lanes) {
      if (lane.loop != null && lane.loop.inEventLoop()) {
        return lane;
      }
    }
    return this;
  }

  private BackendCall send(long id, BackendRequest request, ResponseSink sink) {
    if (socket.ended()) {
      sink.end(new Failure(Failures.WORKER_LOST, "connection to " + owner() + " is closed"));
      return () -> { };
    }
    pending.put(id, sink);
    if (socket.ended() && pending.remove(id) != null) {
      sink.end(new Failure(Failures.WORKER_LOST, "connection to " + owner() + " is closed"));
      return () -> { };
    }
    Buffer body = request.body();
    send(new WorkerMessage.Request(id, request.method(), request.path(), request.headers(), request.stream(), body.length()));
    int max = settings.maxFrameBytes() - DataFrame.HEADER_BYTES;
    for (int offset = 0; offset < body.length(); offset += max) {
      ws.writeBinaryMessage(DataFrame.encode(DataFrame.Kind.REQUEST_BODY, id, body.slice(offset, Math.min(body.length(), offset + max))));
    }
    return new BackendCall() {
      @Override
      public void cancel() {
        if (pending.remove(id) != null) {
          send(new WorkerMessage.Cancel(id));
        }
      }

      @Override
      public void hold(boolean held) {
        if (pending.containsKey(id)) {
          send(held ? new WorkerMessage.Pause(id) : new WorkerMessage.Resume(id));
        }
      }
    };
  }

  @Override
  public Future<List<String>> models() {
    Worker w = worker;
    return Future.succeededFuture(w == null ? List.of() : w.models());
  }

  private void send(WorkerMessage message) {
    socket.send(WireCodec.encode(message));
  }
}
