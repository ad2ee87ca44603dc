package io.switchboard.cli;

import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The one Vert.x instance a command runs on. */
final class EventLoops {

  private static final Logger log = LoggerFactory.getLogger(EventLoops.class);

  private EventLoops() {}

  /**
   * Vert.x on Linux's epoll where the native library loads (it ships in the jar for x86-64), Java NIO
   * elsewhere. Epoll costs less CPU per request on the proxy path: measured in bench/README.md.
   */
  static Vertx start() {
    Vertx vertx = Vertx.vertx(new VertxOptions().setPreferNativeTransport(true));
    if (vertx.isNativeTransportEnabled()) {
      log.debug("event loops on the native transport");
    } else {
      log.info("event loops on Java NIO: the native transport is unavailable ({})", vertx.unavailableNativeTransportCause().getMessage());
    }
    return vertx;
  }
}
