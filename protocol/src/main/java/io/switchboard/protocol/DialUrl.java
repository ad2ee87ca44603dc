package io.switchboard.protocol;

import io.vertx.core.http.WebSocketConnectOptions;
import java.net.URI;
import java.util.Objects;

/** Where an agent (worker, relay) dials the server: the URL people type, turned into a WebSocket address. */
public final class DialUrl {

  private DialUrl() {}

  /**
   * @param serverUrl {@code http://}, {@code https://}, {@code ws://} or {@code wss://}, with or without a path
   * @param defaultPath the dial-in path used when the URL has none, like {@code /api/llm/connect}
   */
  public static WebSocketConnectOptions connectOptions(String serverUrl, String defaultPath) {
    URI uri = URI.create(serverUrl.endsWith("/") ? serverUrl.substring(0, serverUrl.length() - 1) : serverUrl);
    String scheme = switch (Objects.requireNonNullElse(uri.getScheme(), "")) {
      case "http", "ws" -> "ws";
      case "https", "wss" -> "wss";
      default -> throw new IllegalArgumentException("server URL must start with http://, https://, ws:// or wss://: " + serverUrl);
    };
    String path = uri.getPath() == null || uri.getPath().isEmpty() || uri.getPath().equals("/") ? defaultPath : uri.getPath();
    return new WebSocketConnectOptions().setAbsoluteURI(scheme + "://" + uri.getRawAuthority() + path);
  }

  /** The address in words, for logs. */
  public static String describe(WebSocketConnectOptions options) {
    return (Boolean.TRUE.equals(options.isSsl()) ? "wss://" : "ws://") + options.getHost() + ":" + options.getPort() + options.getURI();
  }
}
