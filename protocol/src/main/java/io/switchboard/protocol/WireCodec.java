package io.switchboard.protocol;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * Encodes and decodes {@link WorkerMessage}s and {@link RelayMessage}s: snake_case JSON, unknown
 * fields ignored, nulls left out.
 */
public final class WireCodec {

  private static final ObjectMapper MAPPER = Json.MAPPER;

  private WireCodec() {}

  public static String encode(RelayMessage message) {
    return write(message);
  }

  /**
   * Decodes one text frame of the relay protocol; a frame without {@code type} is a {@code register}.
   *
   * @throws IllegalArgumentException when the text is not a known message
   */
  public static RelayMessage decodeRelay(String text) {
    try {
      return MAPPER.readValue(text, RelayMessage.class);
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException("not a relay message: " + e.getOriginalMessage(), e);
    }
  }

  public static String encode(WorkerMessage message) {
    return write(message);
  }

  private static String write(Object message) {
    try {
      return MAPPER.writeValueAsString(message);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot encode " + message.getClass().getSimpleName(), e);
    }
  }

  /**
   * Decodes one text frame.
   *
   * @throws IllegalArgumentException when the text is not a known message
   */
  public static WorkerMessage decode(String text) {
    try {
      return MAPPER.readValue(text, WorkerMessage.class);
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException("not a worker message: " + e.getOriginalMessage(), e);
    }
  }
}
