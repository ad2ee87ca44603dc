package io.switchboard.worker;

import io.switchboard.protocol.BuildInfo;
import io.switchboard.protocol.CloseCodes;
import io.switchboard.protocol.DataFrame;
import io.switchboard.protocol.DialIn;
import io.switchboard.protocol.DialUrl;
import io.switchboard.protocol.Failures;
import io.switchboard.protocol.FlushCoalescing;
import io.switchboard.protocol.WireCodec;
import io.switchboard.protocol.WorkerMessage;
import io.switchboard.worker.backend.Backend;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.WebSocket;
import io.vertx.core.http.WebSocketClientOptions;
import io.vertx.core.http.WebSocketConnectOptions;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.List;
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
  private final DialIn dialIn;
  private final Promise<Void> firstRegistration = Promise.promise();
  private final Promise<Void> terminated = Promise.promise();
  private final InboundRequests active;
  /** The WebSockets after the first, while it is open. */
  private final List<WebSocket> lanes = new ArrayList<>();

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
  private long pollTimer = -1;
  private boolean draining;
  private boolean loading;
  private boolean stopped;

  public WorkerAgent(Vertx vertx, WorkerConfig config, Backend backend) {
    this.vertx = vertx;
    this.config = config;
    this.backend = backend;
    this.context = vertx.getOrCreateContext();
    this.workerId = config.workerId();
    this.active = new InboundRequests(backend, context, config.maxFrameBytes(), this::counts, this::afterRequest);
    this.dialIn = new DialIn(vertx, new WebSocketClientOptions()
        .setMaxFrameSize(config.maxFrameBytes())
        .setMaxMessageSize(config.maxFrameBytes())
        .setConnectTimeout(15_000)
        .setTcpNoDelay(true), connectOptions(config.serverUrl()), config.reconnectInitial(), config.reconnectMax(),
        DEFAULT_HEARTBEAT_MS, new Connection());
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
          dialIn.connect();
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
      cancelPolling();
      closeLanes();
      dialIn.close(CloseCodes.NORMAL, "worker stopping").onComplete(ar -> {
        terminated.tryComplete();
        closed.complete();
      });
    });
    return closed.future();
  }

  /** The first WebSocket's life, as the dial-in reports it. */
  private final class Connection implements DialIn.Agent {
    @Override
    public void opened(WebSocket ws) {
      registered = false;
      wire(ws);
      registeredModels = models;
      send(new WorkerMessage.Register(config.clientKey(), workerId, workerName(), models, config.maxConcurrency(),
          config.embeddingBatchSize(), BuildInfo.current().version()));
    }

    @Override
    public void beat(WebSocket ws) {
      String beat = WireCodec.encode(new WorkerMessage.Heartbeat(System.currentTimeMillis()));
      ws.writeTextMessage(beat);
      lanes.forEach(lane -> lane.writeTextMessage(beat));
    }

    @Override
    public void lost(WebSocket ws) {
      registered = false;
      closeLanes();
      cancelAll();
      if (stopped || draining) {
        cancelPolling();
        terminated.tryComplete();
      }
    }

    @Override
    public void rejected(short code, String reason) {
      WorkerRejectedException rejected = new WorkerRejectedException(code, reason);
      cancelPolling();
      terminated.tryFail(rejected);
      firstRegistration.tryFail(rejected);
    }

    @Override
    public boolean leaving() {
      return stopped || draining;
    }
  }

  /** What every WebSocket to the server, the first or a lane, is read and written with. */
  private void wire(WebSocket ws) {
    FlushCoalescing.enable(ws);
    ws.textMessageHandler(text -> onText(ws, text));
    ws.binaryMessageHandler(data -> onBinary(ws, data));
    ws.exceptionHandler(e -> log.debug("worker connection error: {}", e.getMessage()));
    ws.drainHandler(v -> active.drained(ws));
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
  private boolean counts(WebSocket ws) {
    return ws == dialIn.socket() || lanes.contains(ws);
  }

  /** Whether a message that came on {@code ws} counts; one on the first connection shows the server is alive. */
  private boolean heardOn(WebSocket ws) {
    if (ws == dialIn.socket()) {
      dialIn.heard();
    }
    return counts(ws);
  }

  private void onText(WebSocket ws, String text) {
    if (!heardOn(ws)) {
      return;
    }
    WorkerMessage message;
    try {
      message = WireCodec.decode(text);
    } catch (IllegalArgumentException e) {
      log.warn("ignoring a message from the server: {}", e.getMessage());
      return;
    }
    switch (message) {
      case WorkerMessage.Registered r when ws == dialIn.socket() -> onRegistered(r);
      case WorkerMessage.Request r -> onRequest(ws, r);
      case WorkerMessage.Cancel c -> active.cancel(c.requestId());
      case WorkerMessage.Pause p -> active.hold(p.requestId(), true);
      case WorkerMessage.Resume r -> active.hold(r.requestId(), false);
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
    dialIn.registered(r.heartbeatIntervalMs());
    if (first) {
      log.info("registered with {} as worker {} serving {}", dialIn.url(), workerId, models);
    }
    if (r.lanes() != null && lanes.isEmpty()) {
      laneDialsLeft = 4 * (r.lanes() - 1);
      openLanes(r.lanes() - 1);
    }
    firstRegistration.tryComplete();
    List<String> changed = models.equals(registeredModels) ? null : models;
    WorkerMessage.Status status = draining ? WorkerMessage.Status.DRAINING : loading ? WorkerMessage.Status.LOADING : null;
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
        send(new WorkerMessage.StatusUpdate(null, null, now ? WorkerMessage.Status.LOADING : WorkerMessage.Status.READY));
      }
    });
  }

  private void onRequest(WebSocket ws, WorkerMessage.Request r) {
    if (draining) {
      send(new WorkerMessage.ResponseEnd(r.requestId(), Failures.WORKER_DRAINING, "worker is draining"));
      return;
    }
    active.add(ws, r);
  }

  private void onBinary(WebSocket ws, Buffer data) {
    if (!heardOn(ws)) {
      return;
    }
    DataFrame frame;
    try {
      frame = DataFrame.decode(data);
    } catch (IllegalArgumentException e) {
      log.warn("ignoring a data frame: {}", e.getMessage());
      return;
    }
    active.body(frame);
  }

  /** Opens {@code count} lanes beside the first connection; one that fails or is refused is done without. */
  private void openLanes(int count) {
    WebSocket owner = dialIn.socket();
    for (int i = 0; i < count && laneDialsLeft > 0; i++) {
      laneDialsLeft--;
      dialIn.dialAnother().onComplete(ar -> {
        if (ar.failed()) {
          log.debug("cannot open a lane to {}: {}", dialIn.url(), ar.cause().getMessage());
          return;
        }
        WebSocket lane = ar.result();
        if (dialIn.socket() != owner || stopped || draining) {
          lane.close();
          return;
        }
        lanes.add(lane);
        wire(lane);
        lane.closeHandler(v -> onLaneClosed(lane));
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
    Short code = lane.closeStatusCode();
    if (code != null && code == CloseCodes.LANE_TAKEN) {
      openLanes(1);
      return;
    }
    int lost = active.cancelOn(lane);
    if (code == null || code != CloseCodes.NORMAL || lost > 0) {
      log.warn("a lane to {} closed ({}); {} request(s) on it aborted", dialIn.url(),
          lane.closeReason() == null ? "connection lost" : lane.closeReason(), lost);
    }
    afterRequest();
    WebSocket owner = dialIn.socket();
    vertx.setTimer(Math.max(1, config.reconnectInitial().toMillis()), t -> {
      if (dialIn.socket() == owner && owner != null) {
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

  private void cancelPolling() {
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
      send(new WorkerMessage.StatusUpdate(null, null, WorkerMessage.Status.DRAINING));
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
    cancelPolling();
    log.info("drained; leaving the server");
    closeLanes();
    dialIn.close(CloseCodes.NORMAL, "worker drained").onComplete(ar -> terminated.tryComplete());
  }

  private void cancelAll() {
    active.cancelAll();
  }

  private void send(WorkerMessage message) {
    WebSocket ws = dialIn.socket();
    if (ws != null) {
      ws.writeTextMessage(WireCodec.encode(message));
    }
  }
}
