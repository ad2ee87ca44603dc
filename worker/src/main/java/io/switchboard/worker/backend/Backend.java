package io.switchboard.worker.backend;

import io.vertx.core.Future;
import java.util.List;

/** Something that answers OpenAI-compatible HTTP requests: an upstream server, a managed instance, a local model. */
public interface Backend {

  /**
   * Starts one request. The sink receives at most one {@link ResponseSink#head}, then body chunks as
   * they arrive, then exactly one {@link ResponseSink#end}, unless the call is cancelled first.
   */
  BackendCall call(BackendRequest request, ResponseSink sink);

  /** The model names this backend serves now. */
  Future<List<String>> models();

  /** Releases connections and anything else the backend holds. */
  default Future<Void> close() {
    return Future.succeededFuture();
  }
}
