package io.switchboard.server.http;

import com.fasterxml.jackson.core.JsonProcessingException;
import io.switchboard.protocol.Json;
import io.vertx.core.http.HttpServerResponse;

/** The one way a handler answers with JSON: a record (or a tree) written by the one mapper. */
public final class JsonReply {

  private JsonReply() {}

  public static void send(HttpServerResponse response, int status, Object body) {
    String text;
    try {
      text = Json.MAPPER.writeValueAsString(body);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot write " + body.getClass().getSimpleName() + " as JSON", e);
    }
    response.setStatusCode(status).putHeader("Content-Type", "application/json").end(text);
  }
}
