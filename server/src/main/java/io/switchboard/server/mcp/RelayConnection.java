package io.switchboard.server.mcp;

import com.fasterxml.jackson.databind.JsonNode;
import io.switchboard.protocol.CloseCodes;
import io.switchboard.protocol.RelayMessage;
import io.switchboard.protocol.WireCodec;
import io.switchboard.server.auth.Authenticator;
import io.switchboard.server.http.AgentSocket;
import io.switchboard.vertx.CallerContext;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.http.ServerWebSocket;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One dialed-in MCP relay, seen from the server: it checks the register message, joins the
 * {@link RelayRegistry}, and carries JSON-RPC messages to the relay and their answers back, many at once.
 */
final class RelayConnection implements AgentSocket.Agent {

  private static final Logger log = LoggerFactory.getLogger(RelayConnection.class);

  /** What a connection needs from the server. */
  record Settings(long heartbeatMs, int maxMessageBytes) {}

  /** Why a call got no answer from the relay. */
  static final class Gone extends RuntimeException {
    Gone(String message) {
      super(message, null, false, false);
    }
  }

  private final Vertx vertx;
  private final ServerWebSocket ws;
  private final RelayRegistry registry;
  private final Settings settings;
  private final Map<Long, Promise<RelayMessage.RpcResult>> pending = new ConcurrentHashMap<>();
  private final AtomicLong reqs = new AtomicLong();
  private final AtomicLong failures = new AtomicLong();
  private volatile String id;
  private volatile String name;
  private final AgentSocket socket;

  RelayConnection(Vertx vertx, ServerWebSocket ws, RelayRegistry registry, Authenticator auth, Settings settings) {
    this.vertx = vertx;
    this.ws = ws;
    this.registry = registry;
    this.settings = settings;
    this.socket = new AgentSocket(vertx, ws, "MCP relay", auth, settings.heartbeatMs(), this);
  }

  String id() {
    return id;
  }

  String name() {
    return name;
  }

  int inFlight() {
    return pending.size();
  }

  /** Messages passed to this relay since it connected. */
  long calls() {
    return reqs.get();
  }

  /** Of those, the ones that got no answer (timeout, disconnect) or an error status. */
  long failures() {
    return failures.get();
  }

  void start() {
    ws.textMessageHandler(this::onText);
    ws.closeHandler(v -> onClosed());
    ws.exceptionHandler(e -> log.debug("relay connection error: {}", e.getMessage()));
  }

  @Override
  public boolean registered() {
    return id != null;
  }

  @Override
  public void dropped() {
    onClosed();
  }

  @Override
  public String describe() {
    return "relay " + id;
  }

  @Override
  public void beat() {
    send(new RelayMessage.Heartbeat(System.currentTimeMillis()));
  }

  /**
   * Passes one JSON-RPC message to the relay; completes with its answer, or fails with {@link Gone}
   * when the relay disconnects or does not answer within {@code timeout}.
   */
  Call call(JsonNode payload, String auth, Duration timeout) {
    long req = reqs.incrementAndGet();
    Promise<RelayMessage.RpcResult> answer = CallerContext.promise(vertx);
    if (socket.ended()) {
      answer.fail(new Gone("relay " + id + " disconnected"));
      return new Call(req, answer.future());
    }
    pending.put(req, answer);
    long deadline = vertx.setTimer(Math.max(1, timeout.toMillis()), t -> {
      if (pending.remove(req) != null) {
        send(new RelayMessage.Cancel(req));
        answer.tryFail(new TimedOut("relay " + id + " did not answer within " + timeout.toSeconds() + " s"));
      }
    });
    send(new RelayMessage.Rpc(req, payload, auth));
    return new Call(req, answer.future().onComplete(ar -> {
      vertx.cancelTimer(deadline);
      if (ar.failed() || ar.result().status() >= 400) {
        failures.incrementAndGet();
      }
    }));
  }

  /** One message on its way: its number, to cancel it, and the answer to come. */
  record Call(long req, Future<RelayMessage.RpcResult> answer) {}

  /** The client went away: the relay may stop waiting for this answer. */
  void cancel(long req) {
    Promise<RelayMessage.RpcResult> waiting = pending.remove(req);
    if (waiting != null) {
      send(new RelayMessage.Cancel(req));
      waiting.tryFail(new Gone("the client went away"));
    }
  }

  private void onText(String text) {
    socket.heard();
    RelayMessage message;
    try {
      message = WireCodec.decodeRelay(text);
    } catch (IllegalArgumentException e) {
      if (id == null) {
        socket.reject(CloseCodes.BAD_REGISTER, "first message must be a register message");
      } else {
        log.warn("relay {} sent an unreadable message: {}", id, e.getMessage());
      }
      return;
    }
    if (id == null) {
      if (message instanceof RelayMessage.Register register) {
        onRegister(register);
      } else {
        socket.reject(CloseCodes.BAD_REGISTER, "first message must be a register message");
      }
      return;
    }
    switch (message) {
      case RelayMessage.RpcResult result -> {
        Promise<RelayMessage.RpcResult> waiting = pending.remove(result.req());
        if (waiting != null) {
          waiting.tryComplete(result);
        }
      }
      case RelayMessage.Heartbeat h -> { }
      default -> log.warn("relay {} sent an unexpected {}", id, message.getClass().getSimpleName());
    }
  }

  private void onRegister(RelayMessage.Register register) {
    if (!socket.admit(register.clientKey())) {
      return;
    }
    id = register.id() == null || register.id().isBlank() ? UUID.randomUUID().toString() : register.id();
    name = register.clientName() == null || register.clientName().isBlank() ? id : register.clientName();
    send(new RelayMessage.Registered(id, settings.heartbeatMs(), settings.maxMessageBytes()));
    registry.register(this).ifPresent(old -> old.replaced());
    log.info("relay {} ({}) connected", id, name);
  }

  private void replaced() {
    socket.replace("relay id");
    failPending("relay " + id + " was replaced by a newer connection");
  }

  private void onClosed() {
    if (!socket.end()) {
      return;
    }
    if (id != null) {
      registry.remove(this);
      log.info("relay {} disconnected", id);
    }
    failPending("relay " + id + " disconnected before answering");
  }

  private void failPending(String why) {
    for (Long req : List.copyOf(pending.keySet())) {
      Promise<RelayMessage.RpcResult> waiting = pending.remove(req);
      if (waiting != null) {
        waiting.tryFail(new Gone(why));
      }
    }
  }

  private void send(RelayMessage message) {
    socket.send(WireCodec.encode(message));
  }

  /** The relay did not answer in time. */
  static final class TimedOut extends RuntimeException {
    TimedOut(String message) {
      super(message, null, false, false);
    }
  }
}
