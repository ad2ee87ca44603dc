package io.switchboard.worker.backend;

import io.netty.handler.codec.http.HttpHeaders;
import io.vertx.core.buffer.Buffer;

/** Where a backend's answer goes, as it arrives. */
public interface ResponseSink {

  /**
   * The answer's status and headers, less the hop-by-hop ones. The headers are the sink's from here
   * on: it may pass them on as they are or change them.
   */
  void head(int status, HttpHeaders headers);

  void chunk(Buffer data);

  /** The answer is complete when {@code failure} is null; otherwise it broke off for that reason. */
  void end(Failure failure);
}
