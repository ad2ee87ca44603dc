package io.switchboard.worker.backend;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.DefaultHttpHeadersFactory;
import io.netty.handler.codec.http.EmptyHttpHeaders;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.AsciiString;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import io.switchboard.protocol.Failures;
import io.switchboard.protocol.Json;
import io.switchboard.vertx.CallerContext;
import io.switchboard.vertx.VertxInternals;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLParameters;

/**
 * A backend that forwards to any OpenAI-compatible server (llama-server, vLLM, Ollama, LM Studio)
 * with a plain HTTP/1.1 request, relaying the answer chunk by chunk.
 *
 * <p>It speaks HTTP on Netty channels of Vert.x's own event loops, with Netty's HTTP codec, rather
 * than through Vert.x's HTTP client: the client's request, stream and future objects per request were
 * a large part of the proxy path's CPU (bench/README.md). Each event loop keeps its own connections,
 * so a request's upstream connection is on the loop that serves its client and only that loop
 * touches them: no lock, no thread handoff.
 */
public final class UpstreamBackend implements Backend {

  private static final ObjectMapper JSON = Json.MAPPER;
  /** Hop-by-hop headers and those the gateway sets itself. */
  private static final List<AsciiString> DROPPED_RESPONSE_HEADERS = List.of(HttpHeaderNames.CONNECTION,
      HttpHeaderNames.TRANSFER_ENCODING, HttpHeaderNames.KEEP_ALIVE, HttpHeaderNames.ACCESS_CONTROL_ALLOW_ORIGIN,
      HttpHeaderNames.ACCESS_CONTROL_ALLOW_CREDENTIALS, HttpHeaderNames.ACCESS_CONTROL_ALLOW_HEADERS,
      HttpHeaderNames.ACCESS_CONTROL_ALLOW_METHODS);
  private static final int CONNECT_TIMEOUT_MS = 5_000;
  private static final Duration MODELS_TIMEOUT = Duration.ofSeconds(10);

  private final String baseUrl;
  private final String host;
  private final int port;
  private final String hostHeader;
  private final String basePath;
  private final String authorization;
  private final List<String> fixedModels;
  private final long idleTimeoutNanos;
  private final Vertx vertx;
  private final SslContext ssl;
  private final Map<EventLoop, LoopConnections> loops = new ConcurrentHashMap<>();
  private volatile boolean closed;

  /**
   * @param baseUrl the upstream's OpenAI base URL; {@code /v1} is appended when it has no path
   * @param apiKey sent as {@code Authorization: Bearer} to the upstream, or null
   * @param fixedModels the models to advertise; when empty they are read from the upstream's {@code /models}
   * @param idleTimeout how long the upstream may stay silent during one request
   */
  public UpstreamBackend(Vertx vertx, String baseUrl, String apiKey, List<String> fixedModels, Duration idleTimeout) {
    this.baseUrl = normalize(baseUrl);
    URI uri = URI.create(this.baseUrl);
    boolean https = "https".equalsIgnoreCase(uri.getScheme());
    this.host = uri.getHost();
    this.port = uri.getPort() > 0 ? uri.getPort() : https ? 443 : 80;
    this.hostHeader = uri.getPort() > 0 ? host + ":" + port : host;
    this.basePath = uri.getRawPath();
    this.authorization = apiKey == null || apiKey.isBlank() ? null : "Bearer " + apiKey;
    this.fixedModels = List.copyOf(fixedModels);
    this.idleTimeoutNanos = idleTimeout.toNanos();
    this.vertx = vertx;
    this.ssl = https ? clientSsl() : null;
  }

  private static SslContext clientSsl() {
    try {
      return SslContextBuilder.forClient().build();
    } catch (SSLException e) {
      throw new IllegalStateException("cannot set up TLS for upstream calls: " + e.getMessage(), e);
    }
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
    if (closed) {
      call.end(new Failure(Failures.UPSTREAM_UNREACHABLE, "upstream " + baseUrl + " is closed"));
      return call;
    }
    // The caller's own loop, so that the answer comes back on it; any loop for other callers.
    EventLoop loop = VertxInternals.callingLoop(vertx);
    LoopConnections connections = loops.computeIfAbsent(loop, LoopConnections::new);
    if (loop.inEventLoop()) {
      connections.send(request, call, true);
    } else {
      loop.execute(() -> connections.send(request, call, true));
    }
    return call;
  }

  @Override
  public Future<List<String>> models() {
    if (!fixedModels.isEmpty()) {
      return Future.succeededFuture(fixedModels);
    }
    // Completed on the caller's context, as Vert.x's own client would: the answer is read on a bare Netty loop.
    Promise<List<String>> models = CallerContext.promise(vertx);
    Buffer body = Buffer.buffer();
    int[] status = {0};
    BackendCall call = call(new BackendRequest("GET", "/models", Map.of("Accept", "application/json"), false, Buffer.buffer()),
        new ResponseSink() {
          @Override
          public void head(int code, HttpHeaders headers) {
            status[0] = code;
          }

          @Override
          public void chunk(Buffer data) {
            body.appendBuffer(data);
          }

          @Override
          public void end(Failure failure) {
            if (failure != null) {
              models.tryFail(failure.message());
            } else if (status[0] != 200) {
              models.tryFail("GET " + baseUrl + "/models answered " + status[0]);
            } else {
              try {
                models.tryComplete(modelIds(body.getBytes()));
              } catch (UncheckedIOException e) {
                models.tryFail(e);
              }
            }
          }
        });
    long timer = vertx.setTimer(MODELS_TIMEOUT.toMillis(), t -> {
      call.cancel();
      models.tryFail("GET " + baseUrl + "/models did not answer within " + MODELS_TIMEOUT.toSeconds() + " s");
    });
    return models.future().onComplete(ar -> vertx.cancelTimer(timer));
  }

  private List<String> modelIds(byte[] body) {
    try {
      List<String> ids = new ArrayList<>();
      for (JsonNode model : JSON.readTree(body).path("data")) {
        ids.add(model.path("id").asText());
      }
      return ids;
    } catch (IOException e) {
      throw new UncheckedIOException(baseUrl + "/models is not an OpenAI model list", e);
    }
  }

  @Override
  public Future<Void> close() {
    closed = true;
    List<Future<Void>> closing = new ArrayList<>();
    for (LoopConnections connections : loops.values()) {
      Promise<Void> done = Promise.promise();
      connections.loop.execute(() -> {
        connections.closeAll();
        done.complete();
      });
      closing.add(done.future());
    }
    return Future.all(closing).mapEmpty();
  }

  private FullHttpRequest encode(BackendRequest request) {
    ByteBuf body = request.body().length() == 0 ? Unpooled.EMPTY_BUFFER : VertxInternals.byteBuf(request.body());
    // A request carries no trailers: the shared empty set spares a header table per request.
    HttpHeaders headers = DefaultHttpHeadersFactory.headersFactory().newHeaders();
    FullHttpRequest out = new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.valueOf(request.method()),
        basePath + request.path(), body, headers, EmptyHttpHeaders.INSTANCE);
    headers.set(HttpHeaderNames.HOST, hostHeader);
    request.headers().forEach(headers::set);
    if (authorization != null) {
      headers.set(HttpHeaderNames.AUTHORIZATION, authorization);
    }
    if (body.isReadable() || !"GET".equals(request.method())) {
      headers.setInt(HttpHeaderNames.CONTENT_LENGTH, body.readableBytes());
    }
    return out;
  }

  /**
   * The upstream's headers, as the decoder read them, less those that are not the client's. One
   * pass over the few headers an answer has, rather than a removal per name that might be there.
   */
  private static HttpHeaders relayed(HttpHeaders headers) {
    List<CharSequence> found = null;
    for (Iterator<Map.Entry<CharSequence, CharSequence>> it = headers.iteratorCharSequence(); it.hasNext(); ) {
      CharSequence name = it.next().getKey();
      if (dropped(name)) {
        if (found == null) {
          found = new ArrayList<>(2);
        }
        found.add(name);
      }
    }
    if (found != null) {
      found.forEach(headers::remove);
    }
    return headers;
  }

  private static boolean dropped(CharSequence name) {
    for (AsciiString candidate : DROPPED_RESPONSE_HEADERS) {
      if (candidate.length() == name.length() && candidate.contentEqualsIgnoreCase(name)) {
        return true;
      }
    }
    return false;
  }

  /**
   * One event loop's connections to the upstream; touched by that loop only. Idle ones are kept
   * most recently used first, and one sweep per loop times out the requests that went silent.
   */
  private final class LoopConnections {
    /** Idle connections kept beyond this many are closed: a burst should not pin sockets forever. */
    private static final int MAX_IDLE = 512;

    private final EventLoop loop;
    private final Bootstrap bootstrap;
    private final ArrayDeque<Connection> idle = new ArrayDeque<>();
    private final Set<Connection> open = new HashSet<>();
    private final ScheduledFuture<?> sweep;

    LoopConnections(EventLoop loop) {
      this.loop = loop;
      this.bootstrap = new Bootstrap().group(loop).channelFactory(VertxInternals.socketChannels(vertx))
          .option(ChannelOption.TCP_NODELAY, true)
          .option(ChannelOption.SO_KEEPALIVE, true)
          .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, CONNECT_TIMEOUT_MS)
          // Vert.x's resolver looks names up without blocking the loop, as its own clients do.
          .resolver(VertxInternals.resolver(vertx));
      long every = Math.clamp(idleTimeoutNanos / 4, TimeUnit.MILLISECONDS.toNanos(50), TimeUnit.SECONDS.toNanos(1));
      this.sweep = loop.scheduleAtFixedRate(this::sweep, every, every, TimeUnit.NANOSECONDS);
    }

    /**
     * Runs the request on an idle connection of this loop, or on a new one. A reused connection may
     * have been closed by the upstream while it sat idle; a request that fails on one before any
     * answer because the connection closed is tried once more on a new connection.
     */
    void send(BackendRequest request, UpstreamCall call, boolean mayReuse) {
      if (call.isOver()) {
        return;
      }
      Connection reused = mayReuse ? idle.pollFirst() : null;
      if (reused != null) {
        reused.start(request, call, true);
        return;
      }
      connect().addListener((ChannelFuture connected) -> {
        if (connected.isSuccess()) {
          connected.channel().pipeline().get(Connection.class).start(request, call, false);
        } else {
          call.end(new Failure(Failures.UPSTREAM_UNREACHABLE, "cannot reach upstream " + baseUrl + ": "
              + connected.cause().getMessage()));
        }
      });
    }

    private ChannelFuture connect() {
      Bootstrap connecting = bootstrap.clone().handler(new ChannelInitializer<Channel>() {
        @Override
        protected void initChannel(Channel channel) {
          if (ssl != null) {
            SSLEngine engine = ssl.newEngine(channel.alloc(), host, port);
            SSLParameters parameters = engine.getSSLParameters();
            parameters.setEndpointIdentificationAlgorithm("HTTPS");
            engine.setSSLParameters(parameters);
            channel.pipeline().addLast(new SslHandler(engine));
          }
          channel.pipeline().addLast(new HttpClientCodec(), new Connection(LoopConnections.this, channel));
        }
      });
      return connecting.connect(host, port);
    }

    void release(Connection connection) {
      if (idle.size() < MAX_IDLE && !closed) {
        idle.addFirst(connection);
      } else {
        connection.channel.close();
      }
    }

    void opened(Connection connection) {
      open.add(connection);
    }

    void forget(Connection connection) {
      open.remove(connection);
      idle.remove(connection);
    }

    private void sweep() {
      long now = System.nanoTime();
      for (Connection connection : List.copyOf(open)) {
        connection.checkSilence(now);
      }
    }

    void closeAll() {
      sweep.cancel(false);
      idle.clear();
      List.copyOf(open).forEach(connection -> connection.channel.close());
    }
  }

  /** One connection to the upstream, carrying one exchange at a time. */
  private final class Connection extends ChannelInboundHandlerAdapter {
    private final LoopConnections home;
    private final Channel channel;
    private UpstreamCall call;
    private BackendRequest request;
    private boolean reused;
    private boolean answered;
    private boolean keepAlive;
    private long lastActivity;

    Connection(LoopConnections home, Channel channel) {
      this.home = home;
      this.channel = channel;
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
      home.opened(this);
      ctx.fireChannelActive();
    }

    void start(BackendRequest request, UpstreamCall call, boolean reused) {
      if (!call.attach(this)) {
        home.release(this);
        return;
      }
      this.call = call;
      this.request = request;
      this.reused = reused;
      this.answered = false;
      this.lastActivity = System.nanoTime();
      if (call.isPaused()) {
        channel.config().setAutoRead(false);
      }
      channel.writeAndFlush(encode(request), channel.voidPromise());
    }

    /**
     * Stops or starts reading the answer: a paused answer waits in the socket, and once the socket's
     * buffers are full, in the upstream. A paused request is not silent, so the sweep leaves it be.
     */
    void hold(UpstreamCall held, boolean pause) {
      if (!channel.eventLoop().inEventLoop()) {
        channel.eventLoop().execute(() -> hold(held, pause));
        return;
      }
      if (call == held) {
        channel.config().setAutoRead(!pause);
        lastActivity = System.nanoTime();
      }
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      try {
        UpstreamCall current = call;
        if (current == null) {
          return;
        }
        lastActivity = System.nanoTime();
        if (msg instanceof HttpResponse response) {
          answered = true;
          keepAlive = HttpUtil.isKeepAlive(response);
          current.head(response.status().code(), relayed(response.headers()));
        }
        if (msg instanceof HttpContent content) {
          ByteBuf data = content.content();
          if (data.isReadable()) {
            // Lent: the decoder's buffer is pooled and goes back once this read is over.
            current.lentChunk(data);
          }
          if (content instanceof LastHttpContent) {
            finish(current);
          }
        }
      } finally {
        ReferenceCountUtil.release(msg);
      }
    }

    private void finish(UpstreamCall current) {
      call = null;
      request = null;
      if (!channel.config().isAutoRead()) {
        // An idle connection keeps reading, or it would not see the upstream close it.
        channel.config().setAutoRead(true);
      }
      if (keepAlive && channel.isActive()) {
        home.release(this);
      } else {
        channel.close();
      }
      current.end(null);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      home.forget(this);
      UpstreamCall current = call;
      BackendRequest lost = request;
      call = null;
      request = null;
      if (current == null) {
        return;
      }
      if (!answered && reused && current.detach()) {
        home.send(lost, current, false);
        return;
      }
      current.end(answered
          ? new Failure(Failures.UPSTREAM_ERROR, "upstream " + baseUrl + " broke off: the connection was closed mid-answer")
          : new Failure(Failures.UPSTREAM_UNREACHABLE, "upstream " + baseUrl + " failed before answering: the connection was closed"));
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      // What went wrong surfaces as the closed connection in channelInactive, with the request's own message.
      ctx.close();
    }

    /** A timeout means the upstream has the request and is slow: the request ends, and is never sent again. */
    void checkSilence(long now) {
      UpstreamCall current = call;
      if (current == null || now - lastActivity < idleTimeoutNanos || !channel.config().isAutoRead()) {
        return;
      }
      call = null;
      request = null;
      channel.close();
      long ms = TimeUnit.NANOSECONDS.toMillis(idleTimeoutNanos);
      current.end(answered
          ? new Failure(Failures.UPSTREAM_ERROR, "upstream " + baseUrl + " went silent mid-answer for " + ms + " ms")
          : new Failure(Failures.UPSTREAM_UNREACHABLE, "upstream " + baseUrl + " did not answer within " + ms + " ms"));
    }

    /**
     * The caller gave up: the answer in flight is cut off with the connection, which cannot carry
     * another. On the loop's next turn, since the cancel may come from inside this connection's read.
     */
    void abortLater(UpstreamCall cancelled) {
      channel.eventLoop().execute(() -> abort(cancelled));
    }

    private void abort(UpstreamCall cancelled) {
      if (call == cancelled) {
        call = null;
        request = null;
        channel.close();
      }
    }
  }

  /** Guards the sink so that it hears nothing after the end or after a cancel. */
  private static final class UpstreamCall implements BackendCall {
    private final ResponseSink sink;
    private Connection connection;
    /** Set under the lock; read without it when a connection takes the call. */
    private volatile boolean paused;
    /** Set under the lock; read without it for each piece of the answer. */
    private volatile boolean over;

    UpstreamCall(ResponseSink sink) {
      this.sink = sink;
    }

    /** Binds the call to the connection it runs on; false when it is already over. */
    synchronized boolean attach(Connection runningOn) {
      connection = runningOn;
      return !over;
    }

    /** Forgets the failed connection so that another can be attached; false once the call is over. */
    synchronized boolean detach() {
      connection = null;
      return !over;
    }

    boolean isPaused() {
      return paused;
    }

    void head(int status, HttpHeaders headers) {
      if (!isOver()) {
        sink.head(status, headers);
      }
    }

    void lentChunk(ByteBuf data) {
      if (!isOver()) {
        sink.lentChunk(data);
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

    boolean isOver() {
      return over;
    }

    @Override
    public void cancel() {
      Connection cut;
      synchronized (this) {
        if (over) {
          return;
        }
        over = true;
        cut = connection;
      }
      if (cut != null) {
        cut.abortLater(this);
      }
    }

    @Override
    public void hold(boolean pause) {
      Connection runningOn;
      synchronized (this) {
        if (over || paused == pause) {
          return;
        }
        paused = pause;
        runningOn = connection;
      }
      if (runningOn != null) {
        runningOn.hold(this, pause);
      }
    }
  }
}
