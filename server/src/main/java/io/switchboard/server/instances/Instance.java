package io.switchboard.server.instances;

import io.switchboard.server.llm.Worker;
import io.switchboard.worker.backend.UpstreamBackend;
import io.switchboard.worker.instances.InstanceLog;
import io.switchboard.worker.instances.ManagedProcess;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One managed instance at run time. Operations on it (start, stop, update, delete) hold
 * {@link #operation} so that they happen one after the other; the status is readable at any time.
 */
final class Instance {

  /** The states an instance goes through, as the API names them. */
  enum Status {
    STOPPED, STARTING, RUNNING, STOPPING, RESTARTING, FAILED;

    String id() {
      return name().toLowerCase();
    }
  }

  final String name;
  final long created;
  final InstanceLog log;
  final ReentrantLock operation = new ReentrantLock();
  volatile InstanceConfig config;
  volatile Status status = Status.STOPPED;
  volatile ManagedProcess process;
  volatile int port;
  volatile UpstreamBackend backend;
  volatile Worker worker;
  volatile long lastUsedMillis = System.currentTimeMillis();
  /** Crashes restarted in a row; a start asked for by a user resets it. */
  volatile int restarts;
  volatile String lastError;
  /** Set by a stop, so that a start or restart under way gives up. */
  volatile boolean stopRequested;

  Instance(String name, long created, InstanceConfig config, InstanceLog log) {
    this.name = name;
    this.created = created;
    this.config = config;
    this.log = log;
  }

  /** Whether it holds, or is about to hold, one of the running slots. */
  boolean holdsSlot() {
    return status == Status.STARTING || status == Status.RUNNING || status == Status.RESTARTING;
  }
}
