package io.switchboard.server.llm;

import io.vertx.core.Future;
import java.util.List;

/**
 * Models that exist while nothing serves them yet: managed instances, which are started when a
 * request names them. The router asks before it routes a request.
 */
public interface ManagedModels {

  /** A managed model as the models list shows it. */
  record Entry(String id, long created, String status) {}

  /**
   * Completes once requests for {@code model} can be routed: at once for a model this does not manage
   * or one that runs, after an on-demand start otherwise. Fails with an
   * {@link io.switchboard.server.http.ApiException} when the model cannot run now (503 not running,
   * 409 at the limit of running instances).
   */
  Future<Void> prepare(String model);

  List<Entry> list();
}
