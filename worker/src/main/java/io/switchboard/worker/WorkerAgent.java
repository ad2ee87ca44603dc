package io.switchboard.worker;

import io.netty.buffer.ByteBuf;
import io.netty.handler.codec.http.HttpHeaders;
import io.switchboard.protocol.BuildInfo;
import io.switchboard.protocol.CloseCodes;
import io.switchboard.protocol.DataFrame;
import io.switchboard.protocol.DialUrl;
import io.switchboard.protocol.Failures;
import io.switchboard.protocol.FlushCoalescing;
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
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.WebSocket;
import io.vertx.core.http.WebSocketClient;
import io.vertx.core.http.WebSocketClientOptions;
import io.vertx.core.http.WebSocketConnectOptions;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The worker side of {@code /api/llm/connect}: dials the server, registers, runs the requests it is
 * sent on its {@link Backend}, and streams the answers back. It reconnects with backoff when the
 * connection drops and re-registers under the id the server gave it. When the server says it has
 * several event loops, the worker opens a lane (one more WebSocket) for each of the others; the server
 * sends a request down the lane on its client's loop, and the answer goes back the way it came.
 *
 * <p>All state lives on one Vert.x context, so nothing here needs a lock.
 */
public final class WorkerAgent {

  private static final Logger log = LoggerFactory.getLogger(WorkerAgent.class);
  private static final long DEFAULT_HEARTBEAT_MS = 5_000;

  private final Vertx vertx;
  private final WorkerConfig config;
  private final Backend backend;
  private final Context context;
  private final WebSocketClient client;
  private final WebSocketConnectOptions connectOptions;
  private final String connectUrl;
  private final Promise<Void> firstRegistration = Promise.promise();
  private final Promise<Void> terminated = Promise.promise();
  private final Map<Long, InboundRequest> active = new HashMap<>();
  /** The WebSockets after the first, while it is open. */
  private final List<WebSocket> lanes = new ArrayList<>();
  /** WebSockets whose write queue is full: the answers they carry wait at their upstreams until it drains. */
  private final Set<WebSocket> fullSockets = new HashSet<>();

  private WebSocket socket;
  private boolean registered;
  /** Lanes this registration may still dial: one refused for landing on a taken loop is dialed again, a few times. */
  private int laneDialsLeft;
  private String workerId;
  private List<String> models = List.of();
  /**
   * The models the last {@code register} carried. Models found while it was in flight are stored but
   * not sent (the server has no worker to apply them to yet), so the answer to it sends what differs.
   */
  private List<String> registeredModels = List.of();
  private long heartbeatMs = DEFAULT_HEARTBEAT_MS;
  private long lastHeard;
  private long heartbeatTimer = -1;
  private long pollTimer = -1;
  private long backoffMs;
  private boolean draining;
  private boolean loading;
  private boolean stopped;

  public WorkerAgent(Vertx vertx, WorkerConfig config, Backend backend) {
    this.vertx = vertx;
    this.config = config;
    this.backend = backend;
    this.context = vertx.getOrCreateContext();
    this.workerId = config.workerId();
    this.backoffMs = config.reconnectInitial().toMillis();
    this.client = vertx.createWebSocketClient(new WebSocketClientOptions()
        .setMaxFrameSize(config.maxFrameBytes())
        .setMaxMessageSize(config.maxFrameBytes())
        .setConnectTimeout(15_000)
        .setTcpNoDelay(true));
    this.connectOptions = connectOptions(config.serverUrl());
    this.connectUrl = DialUrl.describe(connectOptions);
  }

  static WebSocketConnectOptions connectOptions(String serverUrl) {
    return DialUrl.connectOptions(serverUrl, "/api/llm/connect");
  }

  /**
   * Looks up the backend's models, then connects. The future completes at the first successful
   * registration, or fails when the server rejects the worker for good.
   */
  public Future<Void> start() {
    context.runOnContext(v -> backend.models()
        .onSuccess(found -> models = List.copyOf(found))
        .onFailure(e -> log.warn("cannot list the backend's models yet ({}); registering with none", e.getMessage()))
        .onComplete(ignored -> {
          startModelPolling();
          connect();
        }));
    return firstRegistration.future();
  }

  /** Completes when the worker has left for good: drained, stopped or rejected. */
  public Future<Void> terminated() {
    return terminated.future();
  }

  /** The id the server knows this worker by, once registered. */
  public String workerId() {
    return workerId;
  }

  /** Advertises a new model list without reconnecting. */
  public void updateModels(List<String> newModels) {
    context.runOnContext(v -> {
      models = List.copyOf(newModels);
      if (registered) {
        send(new WorkerMessage.StatusUpdate(models, null, null));
      }
    });
  }

  /**
   * Stops taking requests, lets those in flight finish (up to the drain timeout), then disconnects.
   * The returned future completes when the worker has left.
   */
  public Future<Void> drain() {
    context.runOnContext(v -> beginDrain());
    return terminated.future();
  }

  /** Disconnects at once, aborting whatever is in flight. */
  public Future<Void> stop() {
    Promise<Void> closed = Promise.promise();
    context.runOnContext(v -> {
      stopped = true;
      cancelAll();
      cancelTimers();
      closeLanes();
      Future<Void> close = socket == null ? Future.succeededFuture() : socket.close(CloseCodes.NORMAL, "worker stopping");
      close.eventually(() -> client.close()).onComplete(ar -> {
        terminated.tryComplete();
        closed.complete();
      });
    });
    return closed.future();
  }

  private void connect() {
    if (stopped) {
      return;
    }
    client.connect(connectOptions).onComplete(ar -> {
      if (ar.failed()) {
        log.warn("cannot connect to {}: {}; retrying in {} ms", connectUrl, ar.cause().getMessage(), backoffMs);
        scheduleReconnect();
        return;
      }
      onOpen(ar.result());
    });
  }

  private void onOpen(WebSocket ws) {
    if (stopped) {
      ws.close();
      return;
    }
    socket = ws;
    fullSockets.clear();
    registered = false;
    lastHeard = System.nanoTime();
    wire(ws, () -> onClose(ws));
    registeredModels = models;
    send(new WorkerMessage.Register(config.clientKey(), workerId, workerName(), models, config.maxConcurrency(),
        config.embeddingBatchSize(), BuildInfo.current().version()));
    armHeartbeat();
  }

  /** What every WebSocket to the server, the first or a lane, is read and written with. */
  private void wire(WebSocket ws, Runnable onClosed) {
    FlushCoalescing.enable(ws);
    ws.textMessageHandler(text -> onText(ws, text));
    ws.binaryMessageHandler(data -> onBinary(ws, data));
    ws.exceptionHandler(e -> log.debug("worker connection error: {}", e.getMessage()));
    ws.closeHandler(v -> onClosed.run());
    ws.drainHandler(v -> onDrained(ws));
  }

  private String workerName() {
    if (config.workerName() != null && !config.workerName().isBlank()) {
      return config.workerName();
    }
    try {
      return InetAddress.getLocalHost().getHostName();
    } catch (UnknownHostException e) {
      return null;
    }
  }

  /** Whether messages on {@code ws} still count: the first connection, or one of its lanes. */
  private boolean open(WebSocket ws) {
    return ws == socket || lanes.contains(ws);
  }

  private void onText(WebSocket ws, String text) {
    if (!open(ws)) {
      return;
    }
    if (ws == socket) {
      lastHeard = System.nanoTime();
    }
    WorkerMessage message;
    try {
      message = WireCodec.decode(text);
    } catch (IllegalArgumentException e) {
      log.warn("ignoring a message from the server: {}", e.getMessage());
      return;
    }
    switch (message) {
      case WorkerMessage.Registered r when ws == socket -> onRegistered(r);
      case WorkerMessage.Request r -> onRequest(ws, r);
      case WorkerMessage.Cancel c -> {
        InboundRequest request = active.remove(c.requestId());
        if (request != null) {
          request.cancel();
          afterRequest();
        }
      }
      case WorkerMessage.Pause p -> {
        InboundRequest request = active.get(p.requestId());
        if (request != null) {
          request.hold(true);
        }
      }
      case WorkerMessage.Resume r -> {
        InboundRequest request = active.get(r.requestId());
        if (request != null) {
          request.hold(false);
        }
      }
      case WorkerMessage.Drain d -> {
        log.info("server asked this worker to drain");
        beginDrain();
      }
      case WorkerMessage.Heartbeat h -> { }
      default -> log.warn("ignoring unexpected {} from the server", message.getClass().getSimpleName());
    }
  }

  private void onRegistered(WorkerMessage.Registered r) {
    boolean first = workerId == null || !registered;
    workerId = r.workerId();
    registered = true;
    backoffMs = config.reconnectInitial().toMillis();
    if (r.heartbeatIntervalMs() > 0 && r.heartbeatIntervalMs() != heartbeatMs) {
      heartbeatMs = r.heartbeatIntervalMs();
      armHeartbeat();
    }
    if (first) {
      log.info("registered with {} as worker {} serving {}", connectUrl, workerId, models);
    }
    if (r.lanes() != null && lanes.isEmpty()) {
      laneDialsLeft = 4 * (r.lanes() - 1);
      openLanes(r.lanes() - 1);
    }
    firstRegistration.tryComplete();
    List<String> changed = models.equals(registeredModels) ? null : models;
    String status = draining ? "draining" : loading ? "loading" : null;
    if (changed != null || status != null) {
      send(new WorkerMessage.StatusUpdate(changed, null, status));
    }
  }

  /**
   * Says whether the worker is still loading models, so that the server's state shows it; models
   * loaded meanwhile are announced with {@link #updateModels}.
   */
  public void loading(boolean now) {
    context.runOnContext(v -> {
      loading = now;
      if (registered && !draining) {
        send(new WorkerMessage.StatusUpdate(null, null, now ? "loading" : "ready"));
      }
    });
  }

  private void onRequest(WebSocket ws, WorkerMessage.Request r) {
    if (draining) {
      send(new WorkerMessage.ResponseEnd(r.requestId(), Failures.WORKER_DRAINING, "worker is draining"));
      return;
    }
    InboundRequest request = new InboundRequest(ws, r);
    active.put(r.requestId(), request);
    if (r.bodyLength() == 0) {
      request.dispatch();
    }
  }

  private void onBinary(WebSocket ws, Buffer data) {
    if (!open(ws)) {
      return;
    }
    if (ws == socket) {
      lastHeard = System.nanoTime();
    }
    DataFrame frame;
    try {
      frame = DataFrame.decode(data);
    } catch (IllegalArgumentException e) {
      log.warn("ignoring a data frame: {}", e.getMessage());
      return;
    }
    InboundRequest request = active.get(frame.requestId());
    if (request != null && frame.kind() == DataFrame.Kind.REQUEST_BODY) {
      request.append(frame.payload());
    }
  }

  private void onClose(WebSocket ws) {
    if (ws != socket) {
      return;
    }
    socket = null;
    registered = false;
    closeLanes();
    cancelAll();
    Short code = ws.closeStatusCode();
    String reason = ws.closeReason();
    if (code != null && CloseCodes.permanent(code)) {
      log.error("server rejected this worker: {} (close code {}); not reconnecting", reason, code);
      WorkerRejectedException rejected = new WorkerRejectedException(code, reason);
      cancelTimers();
      terminated.tryFail(rejected);
      firstRegistration.tryFail(rejected);
      client.close();
      return;
    }
    if (stopped || draining) {
      cancelTimers();
      terminated.tryComplete();
      return;
    }
    log.warn("disconnected from the server ({}{}); reconnecting in {} ms",
        code == null ? "connection lost" : "close code " + code, reason == null ? "" : ": " + reason, backoffMs);
    scheduleReconnect();
  }

  private void scheduleReconnect() {
    if (stopped) {
      return;
    }
    long delay = backoffMs;
    backoffMs = Math.min(backoffMs * 2, config.reconnectMax().toMillis());
    vertx.setTimer(Math.max(1, delay), t -> connect());
  }

  private void armHeartbeat() {
    if (heartbeatTimer >= 0) {
      vertx.cancelTimer(heartbeatTimer);
    }
    heartbeatTimer = vertx.setPeriodic(heartbeatMs, t -> {
      WebSocket ws = socket;
      if (ws == null) {
        return;
      }
      if (System.nanoTime() - lastHeard > 3_000_000L * heartbeatMs) {
        log.warn("no word from the server for {} ms; reconnecting", 3 * heartbeatMs);
        ws.close(CloseCodes.HEARTBEAT_TIMEOUT, "heartbeat timeout");
        return;
      }
      String beat = WireCodec.encode(new WorkerMessage.Heartbeat(System.currentTimeMillis()));
      ws.writeTextMessage(beat);
      lanes.forEach(lane -> lane.writeTextMessage(beat));
    });
  }

  /** Opens {@code count} lanes beside the first connection; one that fails or is refused is done without. */
  private void openLanes(int count) {
    WebSocket owner = socket;
    for (int i = 0; i < count && laneDialsLeft > 0; i++) {
      laneDialsLeft--;
      client.connect(connectOptions).onComplete(ar -> {
        if (ar.failed()) {
          log.debug("cannot open a lane to {}: {}", connectUrl, ar.cause().getMessage());
          return;
        }
        WebSocket lane = ar.result();
        if (socket != owner || stopped || draining) {
          lane.close();
          return;
        }
        lanes.add(lane);
        wire(lane, () -> onLaneClosed(lane));
        lane.writeTextMessage(WireCodec.encode(new WorkerMessage.Lane(config.clientKey(), workerId)));
      });
    }
  }

  /**
   * A lane closed on its own: the requests it carried are lost, the others go on, and the lane is
   * dialed again after a pause, while this registration's dials last.
   */
  private void onLaneClosed(WebSocket lane) {
    if (!lanes.remove(lane)) {
      return;
    }
    fullSockets.remove(lane);
    Short code = lane.closeStatusCode();
    if (code != null && code == CloseCodes.LANE_TAKEN) {
      openLanes(1);
      return;
    }
    List<InboundRequest> lost = active.values().stream().filter(request -> request.ws == lane).toList();
    if (code == null || code != CloseCodes.NORMAL || !lost.isEmpty()) {
      log.warn("a lane to {} closed ({}); {} request(s) on it aborted", connectUrl,
          lane.closeReason() == null ? "connection lost" : lane.closeReason(), lost.size());
    }
    lost.forEach(request -> {
      active.remove(request.meta.requestId());
      request.cancel();
    });
    afterRequest();
    WebSocket owner = socket;
    vertx.setTimer(Math.max(1, config.reconnectInitial().toMillis()), t -> {
      if (socket == owner && owner != null) {
        openLanes(1);
      }
    });
  }

  private void closeLanes() {
    List<WebSocket> open = List.copyOf(lanes);
    lanes.clear();
    open.forEach(lane -> lane.close(CloseCodes.NORMAL, "worker leaving"));
  }

  private void startModelPolling() {
    long every = config.modelPollInterval().toMillis();
    if (every <= 0) {
      return;
    }
    pollTimer = vertx.setPeriodic(every, t -> backend.models().onSuccess(found -> {
      if (!found.equals(models)) {
        log.info("backend models changed: {} -> {}", models, found);
        updateModels(found);
      }
    }));
  }

  private void cancelTimers() {
    if (heartbeatTimer >= 0) {
      vertx.cancelTimer(heartbeatTimer);
      heartbeatTimer = -1;
    }
    if (pollTimer >= 0) {
      vertx.cancelTimer(pollTimer);
      pollTimer = -1;
    }
  }

  private void beginDrain() {
    if (draining || stopped || terminated.future().isComplete()) {
      return;
    }
    draining = true;
    log.info("draining: {} request(s) in flight", active.size());
    if (registered) {
      send(new WorkerMessage.StatusUpdate(null, null, "draining"));
    }
    vertx.setTimer(Math.max(1, config.drainTimeout().toMillis()), t -> {
      if (!active.isEmpty()) {
        log.warn("drain timeout: aborting {} request(s) still in flight", active.size());
      }
      finishDrain();
    });
    afterRequest();
  }

  private void afterRequest() {
    if (draining && active.isEmpty()) {
      finishDrain();
    }
  }

  private void finishDrain() {
    if (stopped) {
      return;
    }
    stopped = true;
    cancelAll();
    cancelTimers();
    log.info("drained; leaving the server");
    closeLanes();
    WebSocket ws = socket;
    Future<Void> close = ws == null ? Future.succeededFuture() : ws.close(CloseCodes.NORMAL, "worker drained");
    close.eventually(() -> client.close()).onComplete(ar -> terminated.tryComplete());
  }

  private void cancelAll() {
    active.values().forEach(InboundRequest::cancel);
    active.clear();
  }

  private void send(WorkerMessage message) {
    WebSocket ws = socket;
    if (ws != null) {
      ws.writeTextMessage(WireCodec.encode(message));
    }
  }

  /**
   * The WebSocket took what was queued on it: answers held back while it was full are read from
   * their upstreams again, unless the server paused them itself.
   */
  private void onDrained(WebSocket ws) {
    if (fullSockets.remove(ws)) {
      active.values().stream().filter(request -> request.ws == ws).forEach(request -> request.socketFull(false));
    }
  }

  /** Called after each write of an answer: once its WebSocket is full, every answer on it waits for it to drain. */
  private void checkSocket(WebSocket ws, InboundRequest writer) {
    if (!ws.writeQueueFull()) {
      return;
    }
    if (fullSockets.add(ws)) {
      active.values().stream().filter(request -> request.ws == ws).forEach(request -> request.socketFull(true));
    } else {
      writer.socketFull(true);
    }
  }

  /** One request from the server: its body as it arrives, then the backend call and the answer going back. */
  private final class InboundRequest implements ResponseSink {
    private final WebSocket ws;
    private final WorkerMessage.Request meta;
    private Buffer body;
    private BackendCall call;
    private boolean pausedByServer;
    private boolean pausedBySocket;

    InboundRequest(WebSocket ws, WorkerMessage.Request meta) {
      this.ws = ws;
      this.meta = meta;
    }

    void append(Buffer part) {
      if (body == null) {
        body = Buffer.buffer((int) Math.min(meta.bodyLength(), Integer.MAX_VALUE));
      }
      body.appendBuffer(part);
      if (body.length() >= meta.bodyLength()) {
        dispatch();
      }
    }

    void dispatch() {
      Buffer payload = body == null ? Buffer.buffer() : body;
      call = backend.call(new BackendRequest(meta.method(), meta.path(), meta.headers() == null ? Map.of() : meta.headers(),
          meta.stream(), payload), this);
      if (fullSockets.contains(ws)) {
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

    private boolean current() {
      return active.get(meta.requestId()) == this && open(ws);
    }

    @Override
    public void head(int status, HttpHeaders headers) {
      CallerContext.run(context, () -> {
        if (current()) {
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
      if (!current()) {
        return;
      }
      int max = config.maxFrameBytes() - DataFrame.HEADER_BYTES;
      for (int offset = 0; offset < data.length(); offset += max) {
        Buffer part = data.slice(offset, Math.min(data.length(), offset + max));
        ws.writeBinaryMessage(DataFrame.encode(DataFrame.Kind.RESPONSE_BODY, meta.requestId(), part));
      }
      checkSocket(ws, this);
    }

    @Override
    public void end(Failure failure) {
      CallerContext.run(context, () -> {
        if (!current()) {
          return;
        }
        active.remove(meta.requestId());
        ws.writeTextMessage(WireCodec.encode(new WorkerMessage.ResponseEnd(meta.requestId(),
            failure == null ? null : failure.code(), failure == null ? null : failure.message())));
        afterRequest();
      });
    }
  }
}
