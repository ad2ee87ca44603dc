package io.switchboard.worker.backend;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.switchboard.protocol.Failures;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClientAgent;
import io.vertx.core.http.HttpClientConnection;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpClosedException;
import io.vertx.core.http.HttpConnectOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.RequestOptions;
import java.io.IOException;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A backend that forwards to any OpenAI-compatible server (llama-server, vLLM, Ollama, LM Studio)
 * with a plain HTTP request, relaying the answer chunk by chunk.
 */
public final class UpstreamBackend implements Backend {

  private static final ObjectMapper JSON = new ObjectMapper();
  /** Hop-by-hop headers and those the gateway sets itself. */
  private static final Set<String> DROPPED_RESPONSE_HEADERS = caseInsensitive("connection", "transfer-encoding", "keep-alive",
      "access-control-allow-origin", "access-control-allow-credentials", "access-control-allow-headers",
      "access-control-allow-methods");

  private final String baseUrl;
  private final String host;
  private final int port;
  private final boolean ssl;
  private final String basePath;
  private final String apiKey;
  private final List<String> fixedModels;
  private final Duration idleTimeout;
  private final Vertx vertx;
  private final HttpClientOptions clientOptions = new HttpClientOptions().setTcpNoDelay(true).setKeepAlive(true)
      .setConnectTimeout(5_000);
  /** Concurrency is limited by the router's max_concurrency, not by a second, hidden limit here. */
  private final PoolOptions poolOptions = new PoolOptions().setHttp1MaxSize(16_384);
  /**
   * One client and one stack of idle connections per event loop. A connection belongs to the loop
   * that opened it, and a request served on another loop pays a thread handoff (a selector wake-up)
   * for every read and write: the largest cost on the proxy path when measured. With connections per
   * loop, a request's connection is always on its own loop, and only that loop touches its stack, so
   * reusing one takes no lock. Taking connections from this stack rather than from the client's own
   * pool costs 12% less CPU per request (bench/README.md).
   */
  private final ThreadLocal<LoopConnections> loopConnections = new ThreadLocal<>();
  private final Set<HttpClientAgent> clients = ConcurrentHashMap.newKeySet();
  private final HttpClientAgent sharedClient;

  /**
   * @param baseUrl the upstream's OpenAI base URL; {@code /v1} is appended when it has no path
   * @param apiKey sent as {@code Authorization: Bearer} to the upstream, or null
   * @param fixedModels the models to advertise; when empty they are read from the upstream's {@code /models}
   * @param idleTimeout how long the upstream may stay silent during one request
   */
  public UpstreamBackend(Vertx vertx, String baseUrl, String apiKey, List<String> fixedModels, Duration idleTimeout) {
    this.baseUrl = normalize(baseUrl);
    URI uri = URI.create(this.baseUrl);
    this.ssl = "https".equalsIgnoreCase(uri.getScheme());
    this.host = uri.getHost();
    this.port = uri.getPort() > 0 ? uri.getPort() : ssl ? 443 : 80;
    this.basePath = uri.getRawPath();
    this.apiKey = apiKey == null || apiKey.isBlank() ? null : apiKey;
    this.fixedModels = List.copyOf(fixedModels);
    this.idleTimeout = idleTimeout;
    this.vertx = vertx;
    this.sharedClient = vertx.createHttpClient(clientOptions, poolOptions);
    clients.add(sharedClient);
  }

  /** The connections of the calling event loop, or null for a caller off the event loops. */
  private LoopConnections loopConnections() {
    if (!Context.isOnEventLoopThread()) {
      return null;
    }
    LoopConnections connections = loopConnections.get();
    if (connections == null) {
      HttpClientAgent client = vertx.createHttpClient(clientOptions, poolOptions);
      clients.add(client);
      connections = new LoopConnections(client);
      loopConnections.set(connections);
    }
    return connections;
  }

  static String normalize(String url) {
    String trimmed = url.endsWith("/") ? url.substring(0, url.length() - 1) : url;
    URI uri = URI.create(trimmed);
    if (uri.getScheme() == null || uri.getHost() == null) {
      throw new IllegalArgumentException("upstream URL must be absolute, like http://127.0.0.1:8081/v1: " + url);
    }
    return uri.getPath() == null || uri.getPath().isEmpty() ? trimmed + "/v1" : trimmed;
  }

  public String baseUrl() {
    return baseUrl;
  }

  @Override
  public BackendCall call(BackendRequest request, ResponseSink sink) {
    UpstreamCall call = new UpstreamCall(sink);
    RequestOptions options = target(HttpMethod.valueOf(request.method()), request.path())
        .setIdleTimeout(idleTimeout.toMillis());
    request.headers().forEach(options::putHeader);
    if (apiKey != null) {
      options.putHeader("Authorization", "Bearer " + apiKey);
    }
    LoopConnections loop = loopConnections();
    if (loop == null) {
      exchange(sharedClient.request(options), request, call, null, null);
    } else {
      exchange(loop, options, request, call, true);
    }
    return call;
  }

  /**
   * Runs the request on an idle connection of this loop, or on a new one. A reused connection may
   * have been closed by the upstream while it sat idle; a request that fails on one before any answer
   * because the connection closed is tried once more on a new connection.
   */
  private void exchange(LoopConnections loop, RequestOptions options, BackendRequest request, UpstreamCall call, boolean firstTry) {
    HttpClientConnection idle = firstTry ? loop.idle.pollFirst() : null;
    Future<HttpClientConnection> connection = idle != null ? Future.succeededFuture(idle) : loop.open();
    connection.onComplete(ar -> {
      if (ar.failed()) {
        call.end(new Failure(Failures.UPSTREAM_UNREACHABLE, "cannot reach upstream " + baseUrl + ": " + ar.cause().getMessage()));
        return;
      }
      HttpClientConnection conn = ar.result();
      Runnable retry = idle != null ? () -> exchange(loop, options, request, call, false) : null;
      exchange(conn.request(options), request, call, () -> loop.release(conn), retry);
    });
  }

  /**
   * Sends the request and relays the answer to the call.
   *
   * @param reusable run once the answer has ended and the connection may carry another request, or null
   * @param retry run instead of failing when the request fails before any answer, or null
   */
  private void exchange(Future<HttpClientRequest> requested, BackendRequest request, UpstreamCall call, Runnable reusable,
      Runnable retry) {
    requested.onComplete(ar -> {
      if (ar.failed()) {
        failBeforeAnswer(call, retry, ar.cause(), "cannot reach upstream " + baseUrl + ": " + ar.cause().getMessage());
        return;
      }
      HttpClientRequest req = ar.result();
      if (!call.attach(req)) {
        req.reset();
        return;
      }
      req.send(request.body()).onComplete(sent -> {
        if (sent.failed()) {
          failBeforeAnswer(call, retry, sent.cause(), "upstream " + baseUrl + " failed before answering: " + sent.cause().getMessage());
          return;
        }
        HttpClientResponse resp = sent.result();
        resp.exceptionHandler(e -> call.end(new Failure(Failures.UPSTREAM_ERROR, "upstream broke off: " + e.getMessage())));
        resp.handler(call::chunk);
        resp.endHandler(v -> {
          if (reusable != null && !"close".equalsIgnoreCase(resp.getHeader("Connection"))) {
            reusable.run();
          }
          call.end(null);
        });
        call.head(resp.statusCode(), headers(resp.headers()));
      });
    });
  }

  /**
   * Retries only when the connection was closed under the request: a timeout means the upstream has
   * the request and is slow, and sending it again would double its work and the client's wait.
   */
  private static void failBeforeAnswer(UpstreamCall call, Runnable retry, Throwable cause, String message) {
    if (retry != null && cause instanceof HttpClosedException && call.detach()) {
      retry.run();
    } else {
      call.end(new Failure(Failures.UPSTREAM_UNREACHABLE, message));
    }
  }

  /** Options for a path under the base URL, parsed once at construction rather than per request. */
  private RequestOptions target(HttpMethod method, String path) {
    return new RequestOptions().setMethod(method).setHost(host).setPort(port).setSsl(ssl).setURI(basePath + path);
  }

  /** A set that matches header names in any case without lower-casing (and allocating) each one. */
  private static Set<String> caseInsensitive(String... names) {
    Set<String> set = new TreeSet<>(String.CASE_INSENSITIVE_ORDER);
    set.addAll(List.of(names));
    return Collections.unmodifiableSet(set);
  }

  private static Map<String, String> headers(MultiMap headers) {
    Map<String, String> out = new HashMap<>();
    headers.forEach((name, value) -> {
      if (!DROPPED_RESPONSE_HEADERS.contains(name)) {
        out.put(name, value);
      }
    });
    return out;
  }

  @Override
  public Future<List<String>> models() {
    if (!fixedModels.isEmpty()) {
      return Future.succeededFuture(fixedModels);
    }
    RequestOptions options = target(HttpMethod.GET, "/models").setTimeout(10_000);
    if (apiKey != null) {
      options.putHeader("Authorization", "Bearer " + apiKey);
    }
    return sharedClient.request(options)
        .compose(HttpClientRequest::send)
        .compose(resp -> resp.body().map(body -> {
          if (resp.statusCode() != 200) {
            throw new IllegalStateException("GET " + baseUrl + "/models answered " + resp.statusCode());
          }
          return modelIds(body.getBytes());
        }));
  }

  private List<String> modelIds(byte[] body) {
    try {
      List<String> ids = new ArrayList<>();
      for (JsonNode model : JSON.readTree(body).path("data")) {
        ids.add(model.path("id").asText());
      }
      return ids;
    } catch (IOException e) {
      throw new IllegalStateException(baseUrl + "/models is not an OpenAI model list", e);
    }
  }

  @Override
  public Future<Void> close() {
    return Future.all(clients.stream().map(HttpClientAgent::close).toList()).mapEmpty();
  }

  /** One event loop's client and its idle connections, most recently used first; touched by that loop only. */
  private final class LoopConnections {
    /** Idle connections kept beyond this many are closed: a burst should not pin sockets forever. */
    private static final int MAX_IDLE = 512;

    private final HttpClientAgent client;
    private final ArrayDeque<HttpClientConnection> idle = new ArrayDeque<>();

    LoopConnections(HttpClientAgent client) {
      this.client = client;
    }

    Future<HttpClientConnection> open() {
      return client.connect(new HttpConnectOptions().setHost(host).setPort(port).setSsl(ssl)
              .setConnectTimeout(clientOptions.getConnectTimeout()))
          .onSuccess(conn -> conn.closeHandler(v -> idle.remove(conn)));
    }

    void release(HttpClientConnection conn) {
      if (idle.size() < MAX_IDLE) {
        idle.addFirst(conn);
      } else {
        conn.close();
      }
    }
  }

  /** Guards the sink so that it hears nothing after the end or after a cancel. */
  private static final class UpstreamCall implements BackendCall {
    private final ResponseSink sink;
    private HttpClientRequest request;
    private boolean over;

    UpstreamCall(ResponseSink sink) {
      this.sink = sink;
    }

    synchronized boolean attach(HttpClientRequest req) {
      request = req;
      return !over;
    }

    /** Forgets the failed request so that another can be attached; false once the call is over. */
    synchronized boolean detach() {
      request = null;
      return !over;
    }

    void head(int status, Map<String, String> headers) {
      if (!isOver()) {
        sink.head(status, headers);
      }
    }

    void chunk(io.vertx.core.buffer.Buffer data) {
      if (!isOver()) {
        sink.chunk(data);
      }
    }

    void end(Failure failure) {
      synchronized (this) {
        if (over) {
          return;
        }
        over = true;
      }
      sink.end(failure);
    }

    private synchronized boolean isOver() {
      return over;
    }

    @Override
    public void cancel() {
      HttpClientRequest req;
      synchronized (this) {
        if (over) {
          return;
        }
        over = true;
        req = request;
      }
      if (req != null) {
        req.reset();
      }
    }
  }
}
