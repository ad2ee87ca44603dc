package io.switchboard.server.llm;

import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaders;
import io.switchboard.server.http.ApiError;
import io.switchboard.vertx.CallerContext;
import io.switchboard.worker.backend.BackendCall;
import io.vertx.core.Context;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerResponse;

/**
 * Relays a worker's answer to the client's HTTP response as it arrives, without buffering: when the
 * response's write queue is full, the answer is paused at its source until the queue drains. The
 * answer arrives on its worker's or upstream's event loop and is written on the response's.
 */
final class HttpDownstream implements Dispatch.Downstream {

  private final HttpServerResponse response;
  private final Context context;
  private boolean eventStream;
  /** Set once the request is routed; an answer that fills the queue before that is paused on its next piece. */
  private volatile BackendCall source;

  /** Made on the request's context, which the response is written on. */
  HttpDownstream(HttpServerResponse response, Context context) {
    this.response = response;
    this.context = context;
  }

  void answerFrom(BackendCall routed) {
    source = routed;
    response.drainHandler(v -> routed.hold(false));
  }

  @Override
  public void head(Worker worker, int status, HttpHeaders headers) {
    CallerContext.run(context, () -> writeHead(worker, status, headers));
  }

  private void writeHead(Worker worker, int status, HttpHeaders headers) {
    if (response.closed()) {
      return;
    }
    response.setStatusCode(status);
    boolean lengthKnown = headers.contains(HttpHeaderNames.CONTENT_LENGTH);
    eventStream = Dispatch.Downstream.isEventStream(headers);
    headers.forEach(header -> response.putHeader(header.getKey(), header.getValue()));
    response.putHeader("X-Switchboard-Worker", worker.id());
    if (eventStream) {
      response.putHeader("Cache-Control", "no-store").putHeader("X-Accel-Buffering", "no");
    }
    if (!lengthKnown) {
      response.setChunked(true);
    }
  }

  @Override
  public void chunk(Buffer data) {
    CallerContext.run(context, () -> write(data));
  }

  private void write(Buffer data) {
    if (response.closed()) {
      return;
    }
    response.write(data);
    BackendCall routed = source;
    if (routed != null && response.writeQueueFull()) {
      routed.hold(true);
    }
  }

  @Override
  public void complete() {
    CallerContext.run(context, () -> {
      if (!response.closed()) {
        response.end();
      }
    });
  }

  @Override
  public void fail(ApiError error, boolean headSent) {
    CallerContext.run(context, () -> refuse(error, headSent));
  }

  private void refuse(ApiError error, boolean headSent) {
    if (response.closed()) {
      return;
    }
    if (!headSent) {
      error.send(response);
    } else if (eventStream) {
      response.end(error.toSseEvent());
    } else {
      response.reset();
    }
  }
}
