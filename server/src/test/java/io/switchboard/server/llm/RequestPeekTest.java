package io.switchboard.server.llm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import io.netty.buffer.Unpooled;
import io.switchboard.server.http.ApiError;
import io.switchboard.server.http.ApiException;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.internal.buffer.BufferInternal;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * {@link RequestPeek} reads request bodies without Jackson; here it is held to what Jackson's
 * streaming parser says of the same bytes: which bodies are JSON, and what their model and stream are.
 */
class RequestPeekTest {

  private static final JsonFactory JACKSON = new JsonFactory();

  @Test
  void readsModelAndStreamWhereverTheyAre() {
    assertEquals(new RequestPeek("m", true), peek("{\"model\":\"m\",\"stream\":true}"));
    assertEquals(new RequestPeek("m", false), peek(" {\"stream\" : false , \"messages\":[{\"model\":\"inner\"}], \"model\" : \"m\" }\n"));
    assertEquals(new RequestPeek("llama 3 \u00e9\u4e2d\ud83d\ude00", false), peek("{\"model\":\"llama 3 é中😀\"}"));
    assertEquals(new RequestPeek("a\"b\\c/\n\u00e9\ud83d\ude00", false),
        peek("{\"model\":\"a\\\"b\\\\c\\/\\n\\u00E9\\ud83d\\ude00\"}"));
    assertEquals(new RequestPeek("m", true), peek("{\"mod\\u0065l\":\"m\",\"str\\u0065am\":true}"));
    assertEquals(new RequestPeek("last", false), peek("{\"model\":\"first\",\"model\":\"last\",\"stream\":true,\"stream\":null}"));
    assertEquals(new RequestPeek("m", false), peek("\ufeff{\"model\":\"m\",\"n\":[-0,1.5e-3,2E+10,0.25,true,false,null,{},[]]}"));
  }

  @Test
  void readsABodyThatLiesInsideALargerBuffer() {
    byte[] around = "xx{\"model\":\"m\"}yy".getBytes(StandardCharsets.UTF_8);
    Buffer body = BufferInternal.buffer(Unpooled.wrappedBuffer(around, 2, around.length - 4));
    assertEquals(new RequestPeek("m", false), RequestPeek.of(body));
  }

  @Test
  void refusesWhatIsNotAnObjectWithAModel() {
    assertRefused("", "invalid_request_error", "request body is empty");
    assertRefused("[1,2]", "invalid_request_error", "must be a JSON object");
    assertRefused("\"model\"", "invalid_request_error", "must be a JSON object");
    assertRefused("{\"stream\":true}", "invalid_request_error", "you must provide a model");
    assertRefused("{\"model\":\"  \"}", "invalid_request_error", "you must provide a model");
    assertRefused("{\"model\":7}", "invalid_request_error", "you must provide a model");
  }

  @Test
  void refusesMalformedJsonAndSaysWhere() {
    assertRefused("{\"model\":\"m\",}", "invalid_json", "expected '\"' at byte 13 but found '}'");
    assertRefused("{\"model\":\"m\"", "invalid_json", "the body ends where '}' should be");
    assertRefused("{\"model\":\"m\"} {}", "invalid_json", "unexpected content after the object at byte 14");
    assertRefused("{\"model\":\"m\",\"n\":01}", "invalid_json", "expected '}' at byte 18 but found '1'");
    assertRefused("{\"model\":\"m\",\"n\":1.}", "invalid_json", "a digit after the decimal point");
    assertRefused("{\"model\":\"m\",\"n\":tru}", "invalid_json", "expected 'true'");
    assertRefused("{\"model\":\"m\\x\"}", "invalid_json", "unknown escape '\\x'");
    assertRefused("{\"model\":\"m\\u12\"}", "invalid_json", "four hex digits");
    assertRefused("{\"model\":\"a\tb\"}", "invalid_json", "a control character (code 9)");
    assertRefused("{\"model\":\"m\",\"n\":NaN}", "invalid_json", "expected a value at byte 17 but found 'N'");
    assertRefused("hello", "invalid_json", "expected '{' at byte 0 but found 'h'");
  }

  @Test
  void refusesBytesThatAreNotUtf8() {
    for (byte[] bad : new byte[][] {{(byte) 0xc0, (byte) 0x80}, {(byte) 0xed, (byte) 0xa0, (byte) 0x80},
        {(byte) 0xf5, (byte) 0x80, (byte) 0x80, (byte) 0x80}, {(byte) 0xe4, (byte) 0xb8}, {(byte) 0x80}}) {
      byte[] body = concat("{\"model\":\"m\",\"x\":\"".getBytes(StandardCharsets.UTF_8), bad, "\"}".getBytes(StandardCharsets.UTF_8));
      ApiException refused = assertThrows(ApiException.class, () -> RequestPeek.of(Buffer.buffer(body)));
      assertEquals("invalid_json", refused.error().code());
      assertTrue(refused.error().message().contains("not UTF-8 at byte 18"), refused.error().message());
    }
  }

  @Test
  void nestsAsDeepAsJacksonAllowsAndNoDeeper() {
    int allowed = RequestPeek.MAX_DEPTH - 1; // the body's own object is one level
    assertEquals(new RequestPeek("m", false), peek(nested(allowed)));
    assertTrue(Verdict.of(nested(allowed).getBytes(StandardCharsets.UTF_8)).agrees(jackson(nested(allowed).getBytes(StandardCharsets.UTF_8))));
    assertRefused(nested(allowed + 1), "invalid_json", "nesting deeper than 1000 levels");
    assertTrue(jackson(nested(allowed + 1).getBytes(StandardCharsets.UTF_8)).refused());
  }

  @Test
  void agreesWithJacksonOnGeneratedAndMangledBodies() {
    Random random = new Random(20261202);
    int compared = 0;
    for (int i = 0; i < 4000; i++) {
      byte[] body = document(random).getBytes(StandardCharsets.UTF_8);
      compare(body);
      for (int m = 0; m < 6; m++) {
        compare(mangle(body, random));
        compared++;
      }
    }
    assertTrue(compared >= 24_000);
  }

  private static void compare(byte[] body) {
    Verdict ours = Verdict.of(body);
    Verdict theirs = jackson(body);
    if (ours.agrees(theirs)) {
      return;
    }
    // Jackson lets some bytes that are not UTF-8 through (overlong forms, surrogates); we do not.
    if (!isUtf8(body) && ours.refused()) {
      return;
    }
    // Jackson refuses a key with half a surrogate pair escaped in it; JSON's grammar allows it, and so do we.
    if (!ours.refused() && theirs.why().contains("surrogate") && theirs.why().contains("field name")) {
      return;
    }
    fail("for " + printable(body) + "\nwe said " + ours + "\nJackson said " + theirs);
  }

  /** The body with every byte outside printable ASCII written as \\xNN, so the failing bytes can be read. */
  private static String printable(byte[] body) {
    StringBuilder out = new StringBuilder();
    for (byte b : body) {
      out.append(b >= 0x20 && b < 0x7f ? String.valueOf((char) b) : String.format("\\x%02x", b & 0xff));
    }
    return out.toString();
  }

  /** What a peek makes of a body: its model and stream, or that it was refused and why. */
  private record Verdict(String model, boolean stream, boolean refused, String why) {
    static Verdict accepted(String model, boolean stream) {
      return new Verdict(model, stream, false, "");
    }

    static Verdict refused(String why) {
      return new Verdict(null, false, true, why);
    }

    static Verdict of(byte[] body) {
      try {
        RequestPeek peek = RequestPeek.of(Buffer.buffer(body));
        return accepted(peek.model(), peek.stream());
      } catch (ApiException e) {
        assertEquals(400, e.error().status());
        return refused(e.error().message());
      }
    }

    boolean agrees(Verdict other) {
      return refused == other.refused && stream == other.stream && java.util.Objects.equals(model, other.model);
    }
  }

  /**
   * The rule RequestPeek had when it used Jackson, as the reference; but where that version read a
   * {@code stream} that was an array or object as the end of the body, this one steps over it.
   */
  private static Verdict jackson(byte[] body) {
    String model = null;
    boolean stream = false;
    try (JsonParser parser = JACKSON.createParser(body)) {
      if (parser.nextToken() != JsonToken.START_OBJECT) {
        return Verdict.refused("not an object");
      }
      JsonToken token;
      while ((token = parser.nextToken()) == JsonToken.FIELD_NAME) {
        String field = parser.currentName();
        JsonToken value = parser.nextToken();
        if ("model".equals(field) && value == JsonToken.VALUE_STRING) {
          model = parser.getText();
        } else {
          stream = "stream".equals(field) ? value == JsonToken.VALUE_TRUE : stream;
          parser.skipChildren();
        }
      }
      if (token != JsonToken.END_OBJECT || parser.nextToken() != null) {
        return Verdict.refused("content after the object");
      }
    } catch (IOException e) {
      return Verdict.refused(e.getMessage());
    }
    return model == null || model.isBlank() ? Verdict.refused("no model") : Verdict.accepted(model, stream);
  }

  private static String document(Random random) {
    StringBuilder out = new StringBuilder();
    space(out, random);
    out.append('{');
    int members = random.nextInt(5);
    boolean first = true;
    for (int i = 0; i < members + 2; i++) {
      String key = switch (random.nextInt(6)) {
        case 0 -> "model";
        case 1 -> "stream";
        case 2 -> "mod\\u0065l";
        default -> word(random);
      };
      if (!first) {
        out.append(',');
      }
      first = false;
      space(out, random);
      out.append('"').append(key).append('"');
      space(out, random);
      out.append(':');
      space(out, random);
      if (key.startsWith("mod") && random.nextInt(4) > 0) {
        string(out, random);
      } else {
        value(out, random, 0);
      }
      space(out, random);
    }
    out.append('}');
    space(out, random);
    return out.toString();
  }

  private static void value(StringBuilder out, Random random, int depth) {
    switch (random.nextInt(depth > 4 ? 5 : 7)) {
      case 0 -> string(out, random);
      case 1 -> out.append(new String[] {"0", "-0", "17", "-3.25", "1e9", "2.5E-3", "6.02e+23", "1234567890123456789012"}[random.nextInt(8)]);
      case 2 -> out.append("true");
      case 3 -> out.append("false");
      case 4 -> out.append("null");
      case 5 -> {
        out.append('[');
        int n = random.nextInt(4);
        for (int i = 0; i < n; i++) {
          out.append(i > 0 ? "," : "");
          space(out, random);
          value(out, random, depth + 1);
          space(out, random);
        }
        out.append(']');
      }
      default -> {
        out.append('{');
        int n = random.nextInt(4);
        for (int i = 0; i < n; i++) {
          out.append(i > 0 ? "," : "");
          space(out, random);
          string(out, random);
          out.append(':');
          value(out, random, depth + 1);
        }
        out.append('}');
      }
    }
  }

  private static void string(StringBuilder out, Random random) {
    out.append('"');
    int n = random.nextInt(8);
    for (int i = 0; i < n; i++) {
      out.append(switch (random.nextInt(12)) {
        case 0 -> "\\\"";
        case 1 -> "\\\\";
        case 2 -> "\\n";
        case 3 -> "\\u00e9";
        case 4 -> "\\ud83d\\ude00";
        case 5 -> "é";
        case 6 -> "中";
        case 7 -> "😀";
        case 8 -> " ";
        default -> word(random);
      });
    }
    out.append('"');
  }

  private static String word(Random random) {
    return new String[] {"llama", "gpt-4o", "messages", "role", "user", "content", "m"}[random.nextInt(7)];
  }

  private static void space(StringBuilder out, Random random) {
    if (random.nextInt(3) == 0) {
      out.append(new String[] {" ", "\n", "\t", "\r\n  "}[random.nextInt(4)]);
    }
  }

  /** One small damage: a byte dropped, added or changed, or the end cut off. */
  private static byte[] mangle(byte[] body, Random random) {
    byte[] significant = "{}[]\",:\\tfnu0123456789-+.eE \t\n\u0001x".getBytes(StandardCharsets.UTF_8);
    int at = random.nextInt(body.length);
    byte b = random.nextInt(8) == 0 ? (byte) (0x80 + random.nextInt(128)) : significant[random.nextInt(significant.length)];
    return switch (random.nextInt(4)) {
      case 0 -> concat(slice(body, 0, at), slice(body, at + 1, body.length));
      case 1 -> concat(slice(body, 0, at), new byte[] {b}, slice(body, at, body.length));
      case 2 -> {
        byte[] changed = body.clone();
        changed[at] = b;
        yield changed;
      }
      default -> slice(body, 0, at);
    };
  }

  private static String nested(int levels) {
    return "{\"model\":\"m\",\"n\":" + "[".repeat(levels) + "]".repeat(levels) + "}";
  }

  private static boolean isUtf8(byte[] body) {
    try {
      StandardCharsets.UTF_8.newDecoder().decode(ByteBuffer.wrap(body));
      return true;
    } catch (CharacterCodingException e) {
      return false;
    }
  }

  private static RequestPeek peek(String body) {
    return RequestPeek.of(Buffer.buffer(body));
  }

  private static void assertRefused(String body, String code, String detail) {
    ApiException refused = assertThrows(ApiException.class, () -> peek(body));
    ApiError error = refused.error();
    assertEquals(400, error.status());
    assertTrue(code.equals(error.code()) || code.equals(error.type()), error.toString());
    assertTrue(error.message().contains(detail), error.message());
  }

  private static byte[] slice(byte[] bytes, int from, int to) {
    return java.util.Arrays.copyOfRange(bytes, from, to);
  }

  private static byte[] concat(byte[]... parts) {
    int length = 0;
    for (byte[] part : parts) {
      length += part.length;
    }
    byte[] out = new byte[length];
    int at = 0;
    for (byte[] part : parts) {
      System.arraycopy(part, 0, out, at, part.length);
      at += part.length;
    }
    return out;
  }
}
