package io.switchboard.worker.backend;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.handler.codec.http.HttpHeaders;
import io.switchboard.vertx.VertxInternals;
import io.vertx.core.buffer.Buffer;

/** Where a backend's answer goes, as it arrives. */
public interface ResponseSink {

  /**
   * The answer's status and headers, less the hop-by-hop ones. The headers are the sink's from here
   * on: it may pass them on as they are or change them.
   */
  void head(int status, HttpHeaders headers);

  void chunk(Buffer data);

  /**
   * A piece of the answer in the backend's own buffer, lent for the length of this call: a sink that
   * keeps the bytes, or hands them to another thread, retains or copies them first. A backend that
   * reads into pooled buffers answers through here, so that a sink writing to a socket of the same
   * event loop forwards the bytes without a copy (bench/README.md, item 32). By default the bytes are
   * copied into {@link #chunk(Buffer)}.
   */
  default void lentChunk(ByteBuf bytes) {
    chunk(copyOf(bytes));
  }

  /** Lent bytes made the receiver's own: a heap copy that outlives the call. */
  static Buffer copyOf(ByteBuf lent) {
    return VertxInternals.buffer(Unpooled.copiedBuffer(lent));
  }

  /** The answer is complete when {@code failure} is null; otherwise it broke off for that reason. */
  void end(Failure failure);
}
