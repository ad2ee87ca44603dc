package io.switchboard.fakeupstream;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Writes a tiny llama-architecture GGUF (v3) that llama.cpp loads: 2 layers, 64-wide, 4 heads and 2
 * KV heads, F32 weights from a fixed seed, and a SentencePiece vocabulary with ChatML control tokens,
 * the 256 byte tokens and whole-word pieces ("▁hello" with all its prefixes), so that its output,
 * nonsense as it is, streams as words. Tests cannot download weights; this is their model.
 */
public final class TinyGguf {

  private static final int EMBD = 64;
  private static final int HEADS = 4;
  private static final int KV_HEADS = 2;
  private static final int FF = 128;
  private static final int LAYERS = 2;
  private static final int CONTEXT = 512;
  private static final List<String> WORDS = List.of("hello", "world", "switch", "board", "token", "model", "stream", "test");
  private static final String CHATML = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
      + " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

  private TinyGguf() {}

  /** Writes the model to {@code file} and returns it. */
  public static Path write(Path file) throws IOException {
    List<String> tokens = new ArrayList<>();
    List<Float> scores = new ArrayList<>();
    List<Integer> types = new ArrayList<>();
    addToken(tokens, scores, types, "<unk>", 0, 2);
    addToken(tokens, scores, types, "<s>", 0, 3);
    addToken(tokens, scores, types, "</s>", 0, 3);
    addToken(tokens, scores, types, "<|im_start|>", 0, 3);
    addToken(tokens, scores, types, "<|im_end|>", 0, 3);
    for (int b = 0; b < 256; b++) {
      addToken(tokens, scores, types, String.format("<0x%02X>", b), 0, 6);
    }
    addToken(tokens, scores, types, "\u2581", -1, 1);
    for (char c = 'a'; c <= 'z'; c++) {
      addToken(tokens, scores, types, String.valueOf(c), -2, 1);
    }
    for (String word : WORDS) {
      for (int i = 1; i <= word.length(); i++) {
        String piece = "\u2581" + word.substring(0, i);
        if (!tokens.contains(piece)) {
          addToken(tokens, scores, types, piece, i, 1);
        }
      }
    }
    int vocab = tokens.size();

    Map<String, Object> meta = new LinkedHashMap<>();
    meta.put("general.architecture", "llama");
    meta.put("general.name", "switchboard-tiny");
    meta.put("general.alignment", 32);
    meta.put("llama.context_length", CONTEXT);
    meta.put("llama.embedding_length", EMBD);
    meta.put("llama.block_count", LAYERS);
    meta.put("llama.feed_forward_length", FF);
    meta.put("llama.attention.head_count", HEADS);
    meta.put("llama.attention.head_count_kv", KV_HEADS);
    meta.put("llama.rope.dimension_count", EMBD / HEADS);
    meta.put("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    meta.put("tokenizer.ggml.model", "llama");
    meta.put("tokenizer.ggml.tokens", tokens);
    meta.put("tokenizer.ggml.scores", scores);
    meta.put("tokenizer.ggml.token_type", types);
    meta.put("tokenizer.ggml.bos_token_id", 1);
    meta.put("tokenizer.ggml.eos_token_id", 4);
    meta.put("tokenizer.ggml.unknown_token_id", 0);
    meta.put("tokenizer.ggml.add_bos_token", true);
    meta.put("tokenizer.chat_template", CHATML);

    Random random = new Random(42);
    Map<String, long[]> shapes = new LinkedHashMap<>();
    shapes.put("token_embd.weight", new long[] {EMBD, vocab});
    int kvWidth = KV_HEADS * (EMBD / HEADS);
    for (int i = 0; i < LAYERS; i++) {
      String p = "blk." + i + ".";
      shapes.put(p + "attn_norm.weight", new long[] {EMBD});
      shapes.put(p + "attn_q.weight", new long[] {EMBD, EMBD});
      shapes.put(p + "attn_k.weight", new long[] {EMBD, kvWidth});
      shapes.put(p + "attn_v.weight", new long[] {EMBD, kvWidth});
      shapes.put(p + "attn_output.weight", new long[] {EMBD, EMBD});
      shapes.put(p + "ffn_norm.weight", new long[] {EMBD});
      shapes.put(p + "ffn_gate.weight", new long[] {EMBD, FF});
      shapes.put(p + "ffn_up.weight", new long[] {EMBD, FF});
      shapes.put(p + "ffn_down.weight", new long[] {FF, EMBD});
    }
    shapes.put("output_norm.weight", new long[] {EMBD});
    shapes.put("output.weight", new long[] {EMBD, vocab});

    ByteArrayOutputStream out = new ByteArrayOutputStream();
    Writer w = new Writer(out);
    w.u32(0x46554747);
    w.u32(3);
    w.u64(shapes.size());
    w.u64(meta.size());
    for (Map.Entry<String, Object> kv : meta.entrySet()) {
      w.string(kv.getKey());
      w.value(kv.getValue());
    }
    long offset = 0;
    List<float[]> data = new ArrayList<>();
    for (Map.Entry<String, long[]> tensor : shapes.entrySet()) {
      long[] dims = tensor.getValue();
      long count = 1;
      for (long d : dims) {
        count *= d;
      }
      float[] values = new float[(int) count];
      boolean norm = tensor.getKey().endsWith("norm.weight");
      for (int i = 0; i < values.length; i++) {
        values[i] = norm ? 1f : (float) (random.nextGaussian() * 0.08);
      }
      data.add(values);
      w.string(tensor.getKey());
      w.u32(dims.length);
      for (long d : dims) {
        w.u64(d);
      }
      w.u32(0); // F32
      w.u64(offset);
      offset += align(count * 4L);
    }
    w.pad();
    for (float[] values : data) {
      for (float v : values) {
        w.f32(v);
      }
      w.pad();
    }
    Files.write(file, out.toByteArray());
    return file;
  }

  private static void addToken(List<String> tokens, List<Float> scores, List<Integer> types, String token, float score, int type) {
    tokens.add(token);
    scores.add(score);
    types.add(type);
  }

  private static long align(long n) {
    return (n + 31) / 32 * 32;
  }

  /** Little-endian GGUF primitives. */
  private static final class Writer {
    private final ByteArrayOutputStream out;

    Writer(ByteArrayOutputStream out) {
      this.out = out;
    }

    void u32(long v) {
      out.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt((int) v).array());
    }

    void u64(long v) {
      out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array());
    }

    void f32(float v) {
      out.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putFloat(v).array());
    }

    void string(String s) {
      byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
      u64(bytes.length);
      out.writeBytes(bytes);
    }

    void pad() {
      while (out.size() % 32 != 0) {
        out.write(0);
      }
    }

    void value(Object value) {
      switch (value) {
        case String s -> {
          u32(8);
          string(s);
        }
        case Integer i -> {
          u32(4);
          u32(i);
        }
        case Float f -> {
          u32(6);
          f32(f);
        }
        case Boolean b -> {
          u32(7);
          out.write(b ? 1 : 0);
        }
        case List<?> list -> {
          u32(9);
          Object first = list.getFirst();
          u32(first instanceof String ? 8 : first instanceof Float ? 6 : 5);
          u64(list.size());
          for (Object item : list) {
            switch (item) {
              case String s -> string(s);
              case Float f -> f32(f);
              case Integer i -> u32(i);
              default -> throw new IllegalArgumentException(String.valueOf(item));
            }
          }
        }
        default -> throw new IllegalArgumentException("no GGUF type for " + value);
      }
    }
  }
}
