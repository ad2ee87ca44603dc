package io.switchboard.faults;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.util.Locale;
import java.util.Map;

/**
 * HTTP/1.1 written by hand, so that a request can be anything a broken or hostile client sends:
 * any bytes as the body, a path no URI class would let through, headers of any size.
 */
final class RawHttp {

  /** An answer, or a hang: {@code status} -1 when nothing complete came back within the timeout. */
  record Answer(int status, String contentType, String body, long millis) {
    boolean hung() {
      return status < 0;
    }
  }

  private RawHttp() {}

  static Answer send(int port, String method, String rawPath, Map<String, String> headers, byte[] body, int timeoutMs) {
    long started = System.nanoTime();
    try (Socket socket = new Socket()) {
      socket.connect(new InetSocketAddress("127.0.0.1", port), 5_000);
      socket.setSoTimeout(timeoutMs);
      StringBuilder head = new StringBuilder(method).append(' ').append(rawPath).append(" HTTP/1.1\r\n")
          .append("Host: 127.0.0.1:").append(port).append("\r\nConnection: close\r\n");
      headers.forEach((name, value) -> head.append(name).append(": ").append(value).append("\r\n"));
      if (body != null) {
        head.append("Content-Length: ").append(body.length).append("\r\n");
      }
      head.append("\r\n");
      socket.getOutputStream().write(head.toString().getBytes(StandardCharsets.ISO_8859_1));
      if (body != null) {
        try {
          socket.getOutputStream().write(body);
        } catch (IOException refusedMidBody) {
          // A server may answer (413) and close before it read a huge body; its answer is still there to read.
        }
      }
      return read(socket.getInputStream(), started);
    } catch (SocketTimeoutException e) {
      return new Answer(-1, "", "", elapsed(started));
    } catch (IOException e) {
      return new Answer(0, "", "connection failed: " + e.getMessage(), elapsed(started));
    }
  }

  private static long elapsed(long started) {
    return (System.nanoTime() - started) / 1_000_000;
  }

  /** Reads the head, then the body up to its length, its last chunk, or the end of the connection (an event stream: the head only). */
  private static Answer read(InputStream in, long started) throws IOException {
    ByteArrayOutputStream all = new ByteArrayOutputStream();
    byte[] buffer = new byte[8192];
    int headEnd = -1;
    while (headEnd < 0) {
      int n = in.read(buffer);
      if (n < 0) {
        return new Answer(0, "", "connection closed before an answer: " + all.toString(StandardCharsets.ISO_8859_1), elapsed(started));
      }
      all.write(buffer, 0, n);
      headEnd = all.toString(StandardCharsets.ISO_8859_1).indexOf("\r\n\r\n");
    }
    String text = all.toString(StandardCharsets.ISO_8859_1);
    String head = text.substring(0, headEnd).toLowerCase(Locale.ROOT);
    int status = Integer.parseInt(head.substring(9, 12));
    String contentType = header(head, "content-type");
    if (contentType.startsWith("text/event-stream")) {
      return new Answer(status, contentType, "", elapsed(started));
    }
    for (int n = in.read(buffer); n >= 0; n = in.read(buffer)) {
      all.write(buffer, 0, n);
    }
    String body = all.toString(StandardCharsets.UTF_8);
    return new Answer(status, contentType, body.substring(Math.min(body.length(), body.indexOf("\r\n\r\n") + 4)), elapsed(started));
  }

  private static String header(String head, String name) {
    for (String line : head.split("\r\n")) {
      if (line.startsWith(name + ":")) {
        return line.substring(name.length() + 1).trim();
      }
    }
    return "";
  }
}
