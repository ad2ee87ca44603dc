package io.switchboard.server.llm;

import io.switchboard.protocol.CloseCodes;
import io.switchboard.protocol.DataFrame;
import io.switchboard.protocol.Failures;
import io.switchboard.protocol.FlushCoalescing;
import io.switchboard.protocol.WireCodec;
import io.switchboard.protocol.WorkerMessage;
import io.switchboard.server.http.ClientKeyPolicy;
import io.switchboard.server.http.DialInWatch;
import io.switchboard.server.http.Secret;
import io.switchboard.worker.backend.Backend;
import io.switchboard.worker.backend.BackendCall;
import io.switchboard.worker.backend.BackendRequest;
import io.switchboard.worker.backend.Failure;
import io.switchboard.worker.backend.ResponseSink;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.ServerWebSocket;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One dialed-in worker's WebSocket, seen from the server. It checks the {@code register} message,
 * adds the worker to the router, and is the {@link Backend} through which requests reach it: each
 * request gets an id, its body goes as binary frames, and the answer comes back as a head, body
 * frames and an end.
 */
final class WorkerConnection implements Backend, DialInWatch.Connection {

  private static final Logger log = LoggerFactory.getLogger(WorkerConnection.class);

  /** What a connection needs from the server. */
  record Settings(Secret clientKey, long heartbeatMs, int maxFrameBytes) {}

  private final Vertx vertx;
  private final ServerWebSocket ws;
  private final LlmRouter router;
  private final Settings settings;
  private final String bearer;
  private final Map<Long, ResponseSink> pending = new ConcurrentHashMap<>();
  private final AtomicLong ids = new AtomicLong();
  private volatile Worker worker;
  private volatile boolean closed;
  private DialInWatch watch;

  WorkerConnection(Vertx vertx, ServerWebSocket ws, LlmRouter router, Settings settings) {
    this.vertx = vertx;
    this.ws = ws;
    this.router = router;
    this.settings = settings;
    String auth = ws.headers().get("Authorization");
    this.bearer = auth != null && auth.regionMatches(true, 0, "Bearer ", 0, 7) ? auth.substring(7).trim() : null;
  }

  void start() {
    FlushCoalescing.enable(ws);
    ws.textMessageHandler(this::onText);
    ws.binaryMessageHandler(this::onBinary);
    ws.exceptionHandler(e -> log.debug("worker connection error: {}", e.getMessage()));
    ws.closeHandler(v -> onClosed());
    watch = new DialInWatch(vertx, settings.heartbeatMs(), this);
  }

  @Override
  public boolean registered() {
    return worker != null;
  }

  @Override
  public void registerTimedOut() {
    reject(CloseCodes.BAD_REGISTER, "no register message in time");
  }

  @Override
  public void silent(long silentMs) {
    log.warn("{} sent nothing for {} ms; dropping it", worker, silentMs);
    ws.close(CloseCodes.HEARTBEAT_TIMEOUT, "heartbeat timeout");
    onClosed();
  }

  @Override
  public void beat() {
    send(new WorkerMessage.Heartbeat(System.currentTimeMillis()));
  }

  private void onText(String text) {
    watch.heard();
    Worker registered = worker;
    if (registered != null) {
      registered.heard();
    }
    WorkerMessage message;
    try {
      message = WireCodec.decode(text);
    } catch (IllegalArgumentException e) {
      if (worker == null) {
        reject(CloseCodes.BAD_REGISTER, "first message must be a register message");
      } else {
        log.warn("{} sent an unreadable message: {}", worker, e.getMessage());
      }
      return;
    }
    if (worker == null) {
      if (message instanceof WorkerMessage.Register register) {
        onRegister(register);
      } else {
        reject(CloseCodes.BAD_REGISTER, "first message must be a register message");
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
      case WorkerMessage.StatusUpdate update -> {
        if (update.status() != null && !update.status().equals("draining")) {
          worker.loading("loading".equals(update.status()));
        }
        router.update(worker, update.models(), update.maxConcurrency(),
            update.status() == null ? null : "draining".equals(update.status()));
      }
      case WorkerMessage.Heartbeat h -> { }
      default -> log.warn("{} sent an unexpected {}", worker, message.getClass().getSimpleName());
    }
  }

  private void onBinary(Buffer data) {
    watch.heard();
    DataFrame frame;
    try {
      frame = DataFrame.decode(data);
    } catch (IllegalArgumentException e) {
      log.warn("{} sent a bad data frame: {}", worker, e.getMessage());
      return;
    }
    ResponseSink sink = pending.get(frame.requestId());
    if (sink != null && frame.kind() == DataFrame.Kind.RESPONSE_BODY) {
      sink.chunk(frame.payload());
    }
  }

  private void onRegister(WorkerMessage.Register register) {
    String offered = register.clientKey() != null && !register.clientKey().isEmpty() ? register.clientKey() : bearer;
    ClientKeyPolicy.Refusal refusal = ClientKeyPolicy.check(settings.clientKey(), offered);
    if (refusal != null) {
      reject(refusal.code(), refusal.reason());
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
    send(new WorkerMessage.Registered(id, settings.heartbeatMs()));
    router.register(joined).ifPresent(old -> {
      if (old.backend() instanceof WorkerConnection previous) {
        previous.replaced();
      }
    });
  }

  private void replaced() {
    ws.close(CloseCodes.REPLACED, "replaced by a newer connection with the same worker id");
    failPending();
    closed = true;
    watch.stop();
  }

  private void reject(short code, String reason) {
    log.warn("rejecting a worker from {}: {}", ws.remoteAddress(), reason);
    ws.close(code, reason);
  }

  private void onClosed() {
    if (closed) {
      return;
    }
    closed = true;
    watch.stop();
    Worker gone = worker;
    if (gone != null) {
      router.remove(gone);
    }
    failPending();
  }

  private void failPending() {
    for (Long id : List.copyOf(pending.keySet())) {
      ResponseSink sink = pending.remove(id);
      if (sink != null) {
        sink.end(new Failure(Failures.WORKER_LOST, "connection to " + worker + " was lost"));
      }
    }
  }

  /** Asks the worker to drain; the router stops sending it requests at once. */
  void drain() {
    send(new WorkerMessage.Drain());
  }

  @Override
  public BackendCall call(BackendRequest request, ResponseSink sink) {
    long id = ids.incrementAndGet();
    if (closed) {
      sink.end(new Failure(Failures.WORKER_LOST, "connection to " + worker + " is closed"));
      return () -> { };
    }
    pending.put(id, sink);
    if (closed && pending.remove(id) != null) {
      sink.end(new Failure(Failures.WORKER_LOST, "connection to " + worker + " is closed"));
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
    if (!closed) {
      ws.writeTextMessage(WireCodec.encode(message));
    }
  }
}
