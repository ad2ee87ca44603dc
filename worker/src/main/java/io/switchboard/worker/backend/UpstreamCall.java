package io.switchboard.worker.backend;

import io.netty.buffer.ByteBuf;
import io.netty.handler.codec.http.HttpHeaders;
import java.util.Set;

/** Guards the sink so that it hears nothing after the end or after a cancel. */
final class UpstreamCall implements BackendCall {
  private final ResponseSink sink;
  private UpstreamConnection connection;
  /** Set under the lock; read without it when a connection takes the call. */
  private volatile boolean paused;
  /** Set under the lock; read without it for each piece of the answer. */
  private volatile boolean over;

  UpstreamCall(ResponseSink sink) {
    this.sink = sink;
  }

  /** Binds the call to the connection it runs on; false when it is already over. */
  synchronized boolean attach(UpstreamConnection runningOn) {
    connection = runningOn;
    return !over;
  }

  /** Forgets the failed connection so that another can be attached; false once the call is over. */
  synchronized boolean detach() {
    connection = null;
    return !over;
  }

  boolean isPaused() {
    return paused;
  }

  void head(int status, HttpHeaders headers) {
    if (!isOver()) {
      sink.head(status, headers);
    }
  }

  void lentChunk(ByteBuf data) {
    if (!isOver()) {
      sink.lentChunk(data);
    }
  }

  void end(Failure failure) {
    synchronized (this) {
      if (over) {
        return;
      }
      over = true;
    }
    sink.end(failure);
  }

  boolean isOver() {
    return over;
  }

  @Override
  public void cancel() {
    UpstreamConnection cut;
    synchronized (this) {
      if (over) {
        return;
      }
      over = true;
      cut = connection;
    }
    if (cut != null) {
      cut.abortLater(this);
    }
  }

  @Override
  public void hold(boolean pause) {
    UpstreamConnection runningOn;
    synchronized (this) {
      if (over || paused == pause) {
        return;
      }
      paused = pause;
      runningOn = connection;
    }
    if (runningOn != null) {
      runningOn.hold(this, pause);
    }
  }
}
