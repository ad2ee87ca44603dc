package io.switchboard.worker.backend;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.DefaultHttpHeadersFactory;
import io.netty.handler.codec.http.EmptyHttpHeaders;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.util.AsciiString;
import io.switchboard.vertx.VertxInternals;
import java.net.URI;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import javax.net.ssl.SSLException;

/**
 * Where an upstream is and how a request is addressed to it.
 *
 * @param baseUrl its OpenAI base URL, as logs name it
 * @param hostHeader the {@code Host} a request carries
 * @param basePath what comes before a request's own path ({@code /v1})
 * @param authorization the upstream's own {@code Authorization}, or null
 * @param ssl TLS for an {@code https} upstream, else null
 */
record UpstreamTarget(String baseUrl, String host, int port, String hostHeader, String basePath, String authorization,
    SslContext ssl) {

  /** Hop-by-hop headers and those the gateway sets itself. */
  private static final List<AsciiString> DROPPED_RESPONSE_HEADERS = List.of(HttpHeaderNames.CONNECTION,
      HttpHeaderNames.TRANSFER_ENCODING, HttpHeaderNames.KEEP_ALIVE, HttpHeaderNames.ACCESS_CONTROL_ALLOW_ORIGIN,
      HttpHeaderNames.ACCESS_CONTROL_ALLOW_CREDENTIALS, HttpHeaderNames.ACCESS_CONTROL_ALLOW_HEADERS,
      HttpHeaderNames.ACCESS_CONTROL_ALLOW_METHODS);

  /**
   * @param baseUrl the upstream's OpenAI base URL, normalized
   * @param apiKey sent as {@code Authorization: Bearer} to the upstream, or null
   */
  static UpstreamTarget of(String baseUrl, String apiKey) {
    URI uri = URI.create(baseUrl);
    boolean https = "https".equalsIgnoreCase(uri.getScheme());
    String host = uri.getHost();
    int port = uri.getPort() > 0 ? uri.getPort() : https ? 443 : 80;
    return new UpstreamTarget(baseUrl, host, port, uri.getPort() > 0 ? host + ":" + port : host, uri.getRawPath(),
        apiKey == null || apiKey.isBlank() ? null : "Bearer " + apiKey, https ? clientSsl() : null);
  }

  private static SslContext clientSsl() {
    try {
      return SslContextBuilder.forClient().build();
    } catch (SSLException e) {
      throw new IllegalStateException("cannot set up TLS for upstream calls: " + e.getMessage(), e);
    }
  }

  /** The request as it goes on the wire: the base path before its path, the host, and the upstream's key in place of the client's. */
  FullHttpRequest encode(BackendRequest request) {
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
  static HttpHeaders relayed(HttpHeaders headers) {
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
}
