package io.switchboard.server.llm;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import io.switchboard.server.http.ApiError;
import io.switchboard.server.http.ApiException;
import io.vertx.core.buffer.Buffer;
import java.io.IOException;

/**
 * The two things routing needs from a request body, {@code model} and {@code stream}, read with a
 * streaming parser that builds no tree. The whole body is scanned, so malformed JSON is refused
 * here with a 400 rather than at the backend; the bytes themselves go on untouched.
 */
public record RequestPeek(String model, boolean stream) {

  private static final JsonFactory JSON = new JsonFactory();

  public static RequestPeek of(Buffer body) {
    if (body == null || body.length() == 0) {
      throw new ApiException(ApiError.badRequest("request body is empty; send a JSON object with a model"));
    }
    String model = null;
    boolean stream = false;
    try (JsonParser parser = parser(body)) {
      if (parser.nextToken() != JsonToken.START_OBJECT) {
        throw new ApiException(ApiError.badRequest("request body must be a JSON object"));
      }
      JsonToken token;
      while ((token = parser.nextToken()) == JsonToken.FIELD_NAME) {
        String field = parser.currentName();
        JsonToken value = parser.nextToken();
        if ("model".equals(field) && value == JsonToken.VALUE_STRING) {
          model = parser.getText();
        } else if ("stream".equals(field)) {
          stream = value == JsonToken.VALUE_TRUE;
        } else {
          parser.skipChildren();
        }
      }
      if (token != JsonToken.END_OBJECT || parser.nextToken() != null) {
        throw new ApiException(ApiError.invalidJson("unexpected content after the object"));
      }
    } catch (JsonProcessingException e) {
      throw new ApiException(ApiError.invalidJson(e.getOriginalMessage()));
    } catch (IOException e) {
      throw new ApiException(ApiError.invalidJson(e.getMessage()));
    }
    if (model == null || model.isBlank()) {
      throw new ApiException(ApiError.badRequest("you must provide a model parameter"));
    }
    return new RequestPeek(model, stream);
  }

  private static JsonParser parser(Buffer body) throws IOException {
    BufferBytes bytes = BufferBytes.of(body);
    return JSON.createParser(bytes.array(), bytes.start(), bytes.end() - bytes.start());
  }
}
