package io.switchboard.server.http;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerResponse;

/**
 * An error a client can act on, in the OpenAI shape:
 * {@code {"error":{"message","type","param","code"}}}. The one way this server reports failures on
 * its OpenAI endpoints.
 */
public record ApiError(int status, String type, String code, String message) {

  public static ApiError badRequest(String message) {
    return new ApiError(400, "invalid_request_error", "invalid_request", message);
  }

  public static ApiError invalidJson(String detail) {
    return new ApiError(400, "invalid_request_error", "invalid_json", "request body is not valid JSON: " + detail);
  }

  public static ApiError unauthorized(String message) {
    return new ApiError(401, "authentication_error", "invalid_api_key", message);
  }

  /** Who the caller is is known, and it may not do this. */
  public static ApiError forbidden(String message) {
    return new ApiError(403, "permission_error", "forbidden", message);
  }

  public static ApiError notFound(String message) {
    return new ApiError(404, "invalid_request_error", "not_found", message);
  }

  public static ApiError modelNotFound(String model) {
    return new ApiError(404, "invalid_request_error", "model_not_found",
        "The model '" + model + "' does not exist or no worker serves it");
  }

  public static ApiError tooLarge(long limit) {
    return new ApiError(413, "invalid_request_error", "request_too_large",
        "request body is larger than the limit of " + limit + " bytes");
  }

  public static ApiError workerBusy() {
    return new ApiError(503, "server_error", "worker_busy", "every worker for this model is busy and the queue is full; retry later");
  }

  public static ApiError queueTimeout() {
    return new ApiError(503, "server_error", "queue_timeout", "no worker became free in time; retry later");
  }

  public static ApiError noWorkerAvailable(String model) {
    return new ApiError(503, "server_error", "no_worker_available",
        "no worker can take requests for '" + model + "' right now (all draining or gone); retry later");
  }

  public static ApiError draining() {
    return new ApiError(503, "server_error", "draining", "the server is draining and takes no new requests");
  }

  public static ApiError upstream(String code, String message) {
    return new ApiError(502, "server_error", code, message);
  }

  public static ApiError timeout() {
    return new ApiError(504, "server_error", "timeout", "the worker sent nothing within the request timeout");
  }

  public static ApiError conflict(String code, String message) {
    return new ApiError(409, "invalid_request_error", code, message);
  }

  public static ApiError unavailable(String code, String message) {
    return new ApiError(503, "server_error", code, message);
  }

  public static ApiError databaseUnavailable() {
    return new ApiError(503, "server_error", "database_unavailable", "the database cannot be reached right now; retry later");
  }

  public static ApiError internal(String message) {
    return new ApiError(500, "server_error", "internal_error", message);
  }

  /** Whether a client should come back later: 429 and 503 carry a {@code Retry-After}. */
  public boolean retryLater() {
    return status == 429 || status == 503;
  }

  public ObjectNode toJson() {
    ObjectNode body = JsonNodeFactory.instance.objectNode();
    body.putObject("error").put("message", message).put("type", type).putNull("param").put("code", code);
    return body;
  }

  /** The error as one SSE event, for a stream that already started. */
  public Buffer toSseEvent() {
    return Buffer.buffer("data: " + toJson() + "\n\n");
  }

  /** Sends the error as the whole response. */
  public void send(HttpServerResponse response) {
    send(response, toJson());
  }

  /**
   * Sends the error in the flat shape of the instances API, {@code {"error":"message"}}, which its
   * clients (llamactl's) read.
   */
  public void sendPlain(HttpServerResponse response) {
    ObjectNode body = JsonNodeFactory.instance.objectNode();
    body.put("error", message);
    send(response, body);
  }

  private void send(HttpServerResponse response, ObjectNode body) {
    if (response.ended() || response.headWritten()) {
      response.reset();
      return;
    }
    response.setStatusCode(status).putHeader("Content-Type", "application/json");
    if (retryLater() && !response.headers().contains("Retry-After")) {
      response.putHeader("Retry-After", "1");
    }
    response.end(body.toString());
  }
}
