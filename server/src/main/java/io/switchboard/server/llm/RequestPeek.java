package io.switchboard.server.llm;

import io.switchboard.server.http.ApiError;
import io.switchboard.server.http.ApiException;
import io.vertx.core.buffer.Buffer;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * What routing needs from a request body, {@code model} and {@code stream} (and whether it has
 * {@code stream_options}, for the metering of its tokens), read by one pass over its bytes that also checks they are well-formed JSON (RFC 8259, in UTF-8), so malformed
 * JSON is refused here with a 400 rather than at the backend. The bytes themselves go on untouched.
 *
 * <p>This is the one place that reads JSON without Jackson: it runs for every proxied request, and
 * setting up Jackson's parser for a body cost about 1 µs and 870 bytes of garbage, more than the
 * scan itself (bench/README.md). It builds nothing but the model's name. {@code RequestPeekTest}
 * holds it to Jackson's verdict on thousands of generated and mangled bodies.
 */
public record RequestPeek(String model, boolean stream, boolean streamOptions) {

  public RequestPeek(String model, boolean stream) {
    this(model, stream, false);
  }

  /** As deep as Jackson lets a document nest by default; it also bounds this scanner's recursion. */
  static final int MAX_DEPTH = 1000;

  private static final VarHandle LONGS = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
  private static final long LOW_BITS = 0x0101010101010101L;
  private static final long HIGH_BITS = 0x8080808080808080L;
  private static final long QUOTES = '"' * LOW_BITS;
  private static final long BACKSLASHES = '\\' * LOW_BITS;
  private static final long SPACES = ' ' * LOW_BITS;

  private static final byte[] MODEL = "model".getBytes(StandardCharsets.US_ASCII);
  private static final byte[] STREAM = "stream".getBytes(StandardCharsets.US_ASCII);
  private static final byte[] STREAM_OPTIONS = "stream_options".getBytes(StandardCharsets.US_ASCII);

  public static RequestPeek of(Buffer body) {
    if (body == null || body.length() == 0) {
      throw new ApiException(ApiError.badRequest("request body is empty; send a JSON object with a model"));
    }
    BufferBytes bytes = BufferBytes.of(body);
    RequestPeek peek = new Scanner(bytes.array(), bytes.start(), bytes.end()).topObject();
    if (peek.model() == null || peek.model().isBlank()) {
      throw new ApiException(ApiError.badRequest("you must provide a model parameter"));
    }
    return peek;
  }

  /** A cursor over the body's bytes; each method leaves it just past what it read. */
  private static final class Scanner {
    private final byte[] in;
    private final int start;
    private final int end;
    private int at;

    Scanner(byte[] in, int start, int end) {
      this.in = in;
      this.start = start;
      this.end = end;
      this.at = start;
    }

    RequestPeek topObject() {
      skipByteOrderMark();
      skipSpace();
      if (at < end && in[at] != '{' && startsValue(in[at])) {
        throw new ApiException(ApiError.badRequest("request body must be a JSON object"));
      }
      if (!peekIs('{')) {
        throw unexpected("'{'");
      }
      String model = null;
      boolean stream = false;
      boolean streamOptions = false;
      for (boolean more = nextElement('}', true); more; more = nextElement('}', false)) {
        int keyStart = at;
        boolean plainKey = skipString();
        int keyEnd = at;
        skipColon();
        if (isKey(keyStart, keyEnd, plainKey, MODEL) && peekIs('"')) {
          model = readString();
        } else {
          stream = isKey(keyStart, keyEnd, plainKey, STREAM) ? peekIs('t') : stream;
          streamOptions |= isKey(keyStart, keyEnd, plainKey, STREAM_OPTIONS);
          skipValue(1);
        }
      }
      skipSpace();
      if (at < end) {
        throw invalid("unexpected content after the object at byte " + (at - start));
      }
      return new RequestPeek(model, stream, streamOptions);
    }

    /** Whether the key between {@code keyStart} and {@code keyEnd}, quotes included, is {@code name}. */
    private boolean isKey(int keyStart, int keyEnd, boolean plain, byte[] name) {
      if (!plain) {
        return new Scanner(in, keyStart, keyEnd).readString().equals(new String(name, StandardCharsets.US_ASCII));
      }
      if (keyEnd - keyStart - 2 != name.length) {
        return false;
      }
      for (int i = 0; i < name.length; i++) {
        if (in[keyStart + 1 + i] != name[i]) {
          return false;
        }
      }
      return true;
    }

    /** Steps over a value inside a container that is {@code depth} deep (the body's object is 1). */
    private void skipValue(int depth) {
      if ((peekIs('{') || peekIs('[')) && depth >= MAX_DEPTH) {
        throw invalid("nesting deeper than " + MAX_DEPTH + " levels at byte " + (at - start));
      }
      if (at >= end) {
        throw invalid("the body ends where a value should be");
      }
      switch (in[at]) {
        case '{' -> skipObject(depth);
        case '[' -> skipArray(depth);
        case '"' -> skipString();
        case 't' -> skipWord("true");
        case 'f' -> skipWord("false");
        case 'n' -> skipWord("null");
        default -> skipNumber();
      }
    }

    private void skipObject(int depth) {
      for (boolean more = nextElement('}', true); more; more = nextElement('}', false)) {
        skipString();
        skipColon();
        skipValue(depth + 1);
      }
    }

    private void skipArray(int depth) {
      for (boolean more = nextElement(']', true); more; more = nextElement(']', false)) {
        skipValue(depth + 1);
      }
    }

    /**
     * Moves to the next element of the object or array at the cursor: past its opening bracket for
     * the first, past the comma before it for the others. False, with the cursor past the closing
     * bracket, when there is none.
     */
    private boolean nextElement(char close, boolean first) {
      if (first) {
        at++;
        skipSpace();
        if (peekIs(close)) {
          at++;
          return false;
        }
        return true;
      }
      skipSpace();
      if (peekIs(',')) {
        at++;
        skipSpace();
        return true;
      }
      expect(close);
      return false;
    }

    private void skipColon() {
      skipSpace();
      expect(':');
      skipSpace();
    }

    /** Steps over a string, checking its escapes and its UTF-8; true when it has no escapes. */
    private boolean skipString() {
      expect('"');
      boolean plain = true;
      while (true) {
        skipPlainBytes();
        if (at >= end) {
          throw invalid("the body ends inside a string");
        }
        int b = in[at];
        if (b == '"') {
          at++;
          return plain;
        } else if (b == '\\') {
          plain = false;
          skipEscape();
        } else if (b < 0) {
          skipMultiByte();
        } else if (b < 0x20) {
          throw invalid("a control character (code " + b + ") inside a string at byte " + (at - start) + "; escape it");
        } else {
          at++;
        }
      }
    }

    /**
     * Steps over the bytes of a string that need no look (printable ASCII but quote and backslash),
     * eight at a time while none of the eight does: prompts are long, and this is most of the scan.
     */
    private void skipPlainBytes() {
      int i = at;
      while (i + Long.BYTES <= end) {
        long word = (long) LONGS.get(in, i);
        long special = zeroByte(word ^ QUOTES) | zeroByte(word ^ BACKSLASHES)
            | (word - SPACES) & ~word | word & HIGH_BITS;
        if ((special & HIGH_BITS) != 0) {
          break;
        }
        i += Long.BYTES;
      }
      while (i < end && in[i] >= 0x20 && in[i] != '"' && in[i] != '\\') {
        i++;
      }
      at = i;
    }

    /** The high bit set in some byte that was zero (and perhaps in a few above it, which is fine here). */
    private static long zeroByte(long word) {
      return (word - LOW_BITS) & ~word;
    }

    /** Reads a string's text, escapes decoded; the cursor is on its opening quote. */
    private String readString() {
      int start = at + 1;
      if (skipString()) {
        return new String(in, start, at - 1 - start, StandardCharsets.UTF_8);
      }
      StringBuilder text = new StringBuilder(at - start);
      int i = start;
      while (i < at - 1) {
        if (in[i] != '\\') {
          int run = i;
          while (i < at - 1 && in[i] != '\\') {
            i++;
          }
          text.append(new String(in, run, i - run, StandardCharsets.UTF_8));
          continue;
        }
        byte kind = in[i + 1];
        if (kind == 'u') {
          text.append((char) Integer.parseInt(new String(in, i + 2, 4, StandardCharsets.US_ASCII), 16));
          i += 6;
        } else {
          text.append(switch (kind) {
            case 'b' -> '\b';
            case 'f' -> '\f';
            case 'n' -> '\n';
            case 'r' -> '\r';
            case 't' -> '\t';
            default -> (char) kind; // '"', '\\' and '/' stand for themselves
          });
          i += 2;
        }
      }
      return text.toString();
    }

    private void skipEscape() {
      if (at + 1 >= end) {
        throw invalid("the body ends inside a string");
      }
      switch (in[at + 1]) {
        case '"', '\\', '/', 'b', 'f', 'n', 'r', 't' -> at += 2;
        case 'u' -> {
          for (int i = at + 2; i < at + 6; i++) {
            if (i >= end || Character.digit(in[i], 16) < 0) {
              throw invalid("a \\u escape needs four hex digits, at byte " + (at - start));
            }
          }
          at += 6;
        }
        default -> throw invalid("unknown escape '\\" + (char) (in[at + 1] & 0xff) + "' at byte " + (at - start));
      }
    }

    /** A UTF-8 sequence of two to four bytes: no overlong forms, no surrogates, nothing past U+10FFFF. */
    private void skipMultiByte() {
      int lead = in[at] & 0xff;
      int length;
      int min;
      if (lead >= 0xc2 && lead <= 0xdf) {
        length = 2;
        min = 0x80;
      } else if (lead >= 0xe0 && lead <= 0xef) {
        length = 3;
        min = 0x800;
      } else if (lead >= 0xf0 && lead <= 0xf4) {
        length = 4;
        min = 0x10000;
      } else {
        throw badUtf8();
      }
      if (at + length > end) {
        throw badUtf8();
      }
      int codePoint = lead & (0xff >> (length + 1));
      for (int i = 1; i < length; i++) {
        int next = in[at + i] & 0xff;
        if ((next & 0xc0) != 0x80) {
          throw badUtf8();
        }
        codePoint = codePoint << 6 | next & 0x3f;
      }
      if (codePoint < min || codePoint > 0x10ffff || (codePoint >= 0xd800 && codePoint <= 0xdfff)) {
        throw badUtf8();
      }
      at += length;
    }

    private void skipNumber() {
      int start = at;
      if (peekIs('-')) {
        at++;
      }
      if (peekIs('0')) {
        at++;
      } else if (digits() == 0) {
        throw unexpected(start == at ? "a value" : "a digit");
      }
      if (peekIs('.')) {
        at++;
        if (digits() == 0) {
          throw unexpected("a digit after the decimal point");
        }
      }
      if (peekIs('e') || peekIs('E')) {
        at++;
        if (peekIs('+') || peekIs('-')) {
          at++;
        }
        if (digits() == 0) {
          throw unexpected("a digit in the exponent");
        }
      }
    }

    private int digits() {
      int start = at;
      while (at < end && in[at] >= '0' && in[at] <= '9') {
        at++;
      }
      return at - start;
    }

    private void skipWord(String word) {
      for (int i = 0; i < word.length(); i++) {
        if (at >= end || in[at] != word.charAt(i)) {
          throw unexpected("'" + word + "'");
        }
        at++;
      }
    }

    private void skipByteOrderMark() {
      if (end - at >= 3 && in[at] == (byte) 0xef && in[at + 1] == (byte) 0xbb && in[at + 2] == (byte) 0xbf) {
        at += 3;
      }
    }

    private void skipSpace() {
      while (at < end && (in[at] == ' ' || in[at] == '\n' || in[at] == '\r' || in[at] == '\t')) {
        at++;
      }
    }

    private boolean peekIs(char c) {
      return at < end && in[at] == c;
    }

    private void expect(char c) {
      if (!peekIs(c)) {
        throw unexpected("'" + c + "'");
      }
      at++;
    }

    private static boolean startsValue(byte b) {
      return b == '[' || b == '"' || b == '-' || (b >= '0' && b <= '9') || b == 't' || b == 'f' || b == 'n';
    }

    private ApiException unexpected(String wanted) {
      if (at >= end) {
        return invalid("the body ends where " + wanted + " should be");
      }
      int b = in[at] & 0xff;
      String found = b >= 0x20 && b < 0x7f ? "'" + (char) b + "'" : "byte 0x" + Integer.toHexString(b);
      return invalid("expected " + wanted + " at byte " + (at - start) + " but found " + found);
    }

    private ApiException badUtf8() {
      return invalid("bytes that are not UTF-8 at byte " + (at - start));
    }

    private static ApiException invalid(String detail) {
      return new ApiException(ApiError.invalidJson(detail));
    }
  }
}
