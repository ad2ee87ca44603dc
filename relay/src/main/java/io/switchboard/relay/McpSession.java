package io.switchboard.relay;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.modelcontextprotocol.json.McpJsonDefaults;
import io.modelcontextprotocol.json.McpJsonMapper;
import io.modelcontextprotocol.spec.McpClientTransport;
import io.modelcontextprotocol.spec.McpSchema;
import io.modelcontextprotocol.spec.McpTransportSessionNotFoundException;
import io.modelcontextprotocol.spec.ProtocolVersions;
import io.switchboard.protocol.BuildInfo;
import io.switchboard.protocol.Json;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.publisher.Mono;

/**
 * One MCP session with one MCP server (a stdio command or a Streamable HTTP URL), shared by every
 * client that reaches the server through Switchboard. The session is initialized once, as the MCP
 * specification requires; a client's own {@code initialize} is answered from it. Client requests
 * get ids of the session's own, so that clients with the same ids never mix up their answers.
 */
public final class McpSession implements AutoCloseable {

  private static final Logger log = LoggerFactory.getLogger(McpSession.class);
  private static final ObjectMapper JSON = Json.MAPPER;

  /** A JSON-RPC error code of this relay: the MCP server failed or could not be reached. */
  public static final int SERVER_ERROR = -32603;

  private record Pending(JsonNode clientId, CompletableFuture<JsonNode> answer) {}

  private final Supplier<McpClientTransport> transports;
  private final String description;
  private final Duration timeout;
  private final McpJsonMapper mapper = McpJsonDefaults.getMapper();
  private final Map<String, Pending> pending = new ConcurrentHashMap<>();
  private final AtomicLong ids = new AtomicLong();
  private final Object sendLock = new Object();
  private volatile McpClientTransport transport;
  private volatile JsonNode initializeResult;

  /**
   * @param transports makes a fresh transport to the MCP server (a new session after the old one expired)
   * @param description the server in words, for logs
   * @param timeout how long one request may take
   */
  public McpSession(Supplier<McpClientTransport> transports, String description, Duration timeout) {
    this.transports = transports;
    this.description = description;
    this.timeout = timeout;
  }

  /** Connects and initializes; completes with the server's initialize result. */
  public synchronized JsonNode open() {
    McpClientTransport next = transports.get();
    next.connect(inbound -> inbound.doOnNext(this::onInbound).then(Mono.empty())).block(timeout);
    transport = next;
    ObjectNode params = JsonNodeFactory.instance.objectNode().put("protocolVersion", ProtocolVersions.MCP_2025_06_18);
    params.putObject("capabilities");
    params.putObject("clientInfo").put("name", "switchboard-relay").put("version", BuildInfo.current().version());
    ObjectNode request = JsonNodeFactory.instance.objectNode().put("jsonrpc", "2.0").put("method", McpSchema.METHOD_INITIALIZE);
    request.set("id", JsonNodeFactory.instance.numberNode(0));
    request.set("params", params);
    JsonNode answer = call(request);
    if (answer.has("error")) {
      throw new IllegalStateException("MCP server " + description + " refused initialize: " + answer.get("error"));
    }
    initializeResult = answer.get("result");
    send(JsonNodeFactory.instance.objectNode().put("jsonrpc", "2.0").put("method", McpSchema.METHOD_NOTIFICATION_INITIALIZED));
    log.info("MCP session with {} open ({} {})", description, initializeResult.path("serverInfo").path("name").asText("?"),
        initializeResult.path("serverInfo").path("version").asText(""));
    return initializeResult;
  }

  /**
   * Passes one message of a client to the server. Returns the answer for a request (with the
   * client's id), or null for a notification. {@code initialize} is answered from the session.
   */
  public JsonNode forward(JsonNode message) {
    String method = message.path("method").asText();
    JsonNode id = message.get("id");
    if (id == null || id.isNull()) {
      if (!McpSchema.METHOD_NOTIFICATION_INITIALIZED.equals(method)) {
        send(message);
      }
      return null;
    }
    if (McpSchema.METHOD_INITIALIZE.equals(method)) {
      ObjectNode answer = JsonNodeFactory.instance.objectNode().put("jsonrpc", "2.0");
      answer.set("id", id);
      answer.set("result", initializeResult.deepCopy());
      return answer;
    }
    try {
      return call(message);
    } catch (SessionExpired e) {
      log.info("MCP session with {} expired; opening a new one", description);
      open();
      return call(message);
    }
  }

  /** A JSON-RPC error answer for {@code id}. */
  public static ObjectNode error(JsonNode id, int code, String message) {
    ObjectNode answer = JsonNodeFactory.instance.objectNode().put("jsonrpc", "2.0");
    answer.set("id", id == null ? JsonNodeFactory.instance.nullNode() : id);
    answer.putObject("error").put("code", code).put("message", message);
    return answer;
  }

  private JsonNode call(JsonNode message) {
    String ownId = "sb-" + ids.incrementAndGet();
    JsonNode clientId = message.get("id");
    ObjectNode outgoing = ((ObjectNode) message).deepCopy();
    outgoing.put("id", ownId);
    CompletableFuture<JsonNode> answer = new CompletableFuture<>();
    pending.put(ownId, new Pending(clientId, answer));
    try {
      send(outgoing);
      return answer.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (TimeoutException e) {
      return error(clientId, SERVER_ERROR, "MCP server " + description + " did not answer within " + timeout.toSeconds() + " s");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return error(clientId, SERVER_ERROR, "interrupted");
    } catch (RuntimeException | ExecutionException e) {
      Throwable cause = e instanceof ExecutionException ? e.getCause() : e;
      if (hasCause(cause, McpTransportSessionNotFoundException.class)) {
        throw new SessionExpired();
      }
      return error(clientId, SERVER_ERROR, "MCP server " + description + " failed: " + cause.getMessage());
    } finally {
      pending.remove(ownId);
    }
  }

  /** One message at a time: the SDK's transports take messages from one sender, not from many threads at once. */
  private void send(JsonNode message) {
    synchronized (sendLock) {
      transport.sendMessage(toSdk(message)).block(timeout);
    }
  }

  private void onInbound(McpSchema.JSONRPCMessage message) {
    JsonNode json = fromSdk(message);
    switch (message) {
      case McpSchema.JSONRPCResponse response -> {
        Pending waiting = pending.get(String.valueOf(response.id()));
        if (waiting != null) {
          ObjectNode answer = ((ObjectNode) json);
          answer.set("id", waiting.clientId());
          waiting.answer().complete(answer);
        }
      }
      case McpSchema.JSONRPCRequest request -> {
        // The server asks the client something (ping, roots, sampling). Only ping can be answered here.
        ObjectNode reply = McpSchema.METHOD_PING.equals(request.method())
            ? JsonNodeFactory.instance.objectNode().put("jsonrpc", "2.0")
            : error(null, -32601, "'" + request.method() + "' is not available through a Switchboard relay");
        reply.set("id", JSON.valueToTree(request.id()));
        if (!reply.has("error")) {
          reply.putObject("result");
        }
        Thread.ofVirtual().start(() -> send(reply));
      }
      default -> log.debug("notification from {}: {}", description, json);
    }
  }

  private McpSchema.JSONRPCMessage toSdk(JsonNode message) {
    try {
      return McpSchema.deserializeJsonRpcMessage(mapper, message.toString());
    } catch (IOException e) {
      throw new IllegalArgumentException("not a JSON-RPC message: " + e.getMessage(), e);
    }
  }

  private JsonNode fromSdk(McpSchema.JSONRPCMessage message) {
    try {
      return JSON.readTree(mapper.writeValueAsString(message));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static boolean hasCause(Throwable failure, Class<? extends Throwable> type) {
    for (Throwable t = failure; t != null; t = t.getCause() == t ? null : t.getCause()) {
      if (type.isInstance(t)) {
        return true;
      }
    }
    return false;
  }

  @Override
  public void close() {
    McpClientTransport current = transport;
    if (current != null) {
      current.closeGracefully().block(Duration.ofSeconds(5));
    }
  }

  /** The MCP server forgot the session; a new one is opened and the request sent again. */
  private static final class SessionExpired extends RuntimeException {
    SessionExpired() {
      super(null, null, false, false);
    }
  }
}
