package io.switchboard.protocol;

import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;
import com.fasterxml.jackson.annotation.JsonValue;
import io.netty.handler.codec.http.DefaultHttpHeaders;
import io.netty.handler.codec.http.HttpHeaders;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A control message between the server and a worker, sent as one JSON text frame on the
 * {@code /api/llm/connect} WebSocket. The {@code type} field names the kind. Request and response
 * bodies do not travel here: they go as binary {@link DataFrame}s so that bytes are never re-encoded.
 */
@JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "type")
@JsonSubTypes({
    @JsonSubTypes.Type(value = WorkerMessage.Register.class, name = "register"),
    @JsonSubTypes.Type(value = WorkerMessage.Registered.class, name = "registered"),
    @JsonSubTypes.Type(value = WorkerMessage.Lane.class, name = "lane"),
    @JsonSubTypes.Type(value = WorkerMessage.StatusUpdate.class, name = "status_update"),
    @JsonSubTypes.Type(value = WorkerMessage.Heartbeat.class, name = "heartbeat"),
    @JsonSubTypes.Type(value = WorkerMessage.Request.class, name = "request"),
    @JsonSubTypes.Type(value = WorkerMessage.ResponseHead.class, name = "response_headers"),
    @JsonSubTypes.Type(value = WorkerMessage.ResponseEnd.class, name = "response_end"),
    @JsonSubTypes.Type(value = WorkerMessage.Cancel.class, name = "cancel"),
    @JsonSubTypes.Type(value = WorkerMessage.Pause.class, name = "pause"),
    @JsonSubTypes.Type(value = WorkerMessage.Resume.class, name = "resume"),
    @JsonSubTypes.Type(value = WorkerMessage.Drain.class, name = "drain"),
})
public sealed interface WorkerMessage {

  /**
   * Worker to server, first message on a connection. Every field but {@code type} is optional:
   * the server assigns an id when none is given, and a worker that sends the id it was given
   * before replaces its old connection.
   */
  record Register(
      String clientKey,
      String workerId,
      String workerName,
      List<String> models,
      Integer maxConcurrency,
      Integer embeddingBatchSize,
      String version) implements WorkerMessage {}

  /**
   * Server to worker: the registration was accepted under this id; send heartbeats at this interval.
   * {@code lanes}, when over one, is how many WebSockets the worker may hold: one per event loop of the
   * server, so that a request and its answer stay on the loop its client is on. The worker opens the
   * others with {@link Lane}. A server that does not send it takes one.
   */
  record Registered(String workerId, long heartbeatIntervalMs, Integer lanes) implements WorkerMessage {}

  /**
   * Worker to server, first message on each further WebSocket of a registered worker, with the
   * client key and the id of its {@code register}. A lane carries requests and answers and heartbeats
   * like the first connection; everything else (status, drain) stays on the first. Its loss fails only
   * the requests it carried; the loss of the first connection closes every lane.
   */
  record Lane(String clientKey, String workerId) implements WorkerMessage {}

  /**
   * Worker to server: a change of what the worker offers, without reconnecting. Null fields are
   * unchanged; so is a status this server does not know (a newer worker's).
   */
  record StatusUpdate(List<String> models, Integer maxConcurrency, Status status) implements WorkerMessage {}

  /** What a worker is doing, as {@link StatusUpdate} says it: on the wire, the lower-case name. */
  enum Status {
    /** Serving its models. */
    READY,
    /** Loading models; more will be announced. */
    LOADING,
    /** Finishing what it runs, then leaving; it takes no new requests. */
    DRAINING;

    @JsonValue
    public String wire() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /** Either way, every heartbeat interval; a peer silent for three intervals is considered gone. */
  record Heartbeat(long ts) implements WorkerMessage {}

  /**
   * Server to worker: run one HTTP request against the backend. {@code path} is relative to the
   * backend's OpenAI base URL (for example {@code /chat/completions}). The body follows as
   * {@code bodyLength} bytes of {@link DataFrame.Kind#REQUEST_BODY} frames.
   */
  record Request(
      long requestId,
      String method,
      String path,
      Map<String, String> headers,
      boolean stream,
      long bodyLength) implements WorkerMessage {}

  /**
   * Worker to server: the backend answered with this status and these headers (one value per
   * name); body frames follow.
   */
  record ResponseHead(long requestId, int status, Map<String, String> headers) implements WorkerMessage {

    /** The head of a backend's answer, as it travels. */
    public static ResponseHead of(long requestId, int status, HttpHeaders headers) {
      Map<String, String> map = new LinkedHashMap<>();
      for (Map.Entry<String, String> header : headers) {
        map.put(header.getKey(), header.getValue());
      }
      return new ResponseHead(requestId, status, map);
    }

    /** The headers as HTTP headers again, each name and value checked: they come from another machine. */
    public HttpHeaders httpHeaders() {
      HttpHeaders out = new DefaultHttpHeaders();
      if (headers != null) {
        headers.forEach(out::add);
      }
      return out;
    }
  }

  /**
   * Worker to server: the request is over. A null {@code error} is a complete response; otherwise
   * {@code error} is one of the codes in {@link Failures} and {@code message} explains it.
   */
  record ResponseEnd(long requestId, String error, String message) implements WorkerMessage {}

  /** Server to worker: the client went away or timed out; abort the backend request. */
  record Cancel(long requestId) implements WorkerMessage {}

  /**
   * Server to worker: the client reads the answer slower than it comes; stop reading it from the
   * upstream until {@link Resume}, so that it waits in the upstream's socket rather than in memory.
   */
  record Pause(long requestId) implements WorkerMessage {}

  /** Server to worker: the client caught up; read the answer from the upstream again. */
  record Resume(long requestId) implements WorkerMessage {}

  /** Server to worker: stop taking requests, finish those in flight, then disconnect and exit. */
  record Drain() implements WorkerMessage {}
}
