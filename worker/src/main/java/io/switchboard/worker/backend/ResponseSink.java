package io.switchboard.worker.backend;

import io.vertx.core.buffer.Buffer;
import java.util.Map;

/** Where a backend's answer goes, as it arrives. */
public interface ResponseSink {

  void head(int status, Map<String, String> headers);

  void chunk(Buffer data);

  /** The answer is complete when {@code failure} is null; otherwise it broke off for that reason. */
  void end(Failure failure);
}
