package io.switchboard.cli;

import java.util.List;
import sun.misc.Signal;

/**
 * SIGTERM and SIGINT begin a command's graceful stop, which then returns its exit status from
 * {@code call()}. A shutdown hook would do the same work, but a JVM ended through its hooks exits
 * 143 (or 130) whatever they did, and service managers and orchestrators read that as a failure;
 * {@code sun.misc.Signal} is the JDK's one way to answer a signal and still choose the exit status.
 */
final class Termination {

  private Termination() {}

  /** Runs {@code stop} on a thread of its own at the first SIGTERM or SIGINT; later ones are ignored. */
  static void onSignal(String name, Runnable stop) {
    Thread stopper = Thread.ofPlatform().name(name).unstarted(stop);
    for (String signal : List.of("TERM", "INT")) {
      Signal.handle(new Signal(signal), received -> {
        synchronized (stopper) {
          if (stopper.getState() == Thread.State.NEW) {
            stopper.start();
          }
        }
      });
    }
  }
}
