package io.switchboard.bench;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

/**
 * Opens concurrent streaming chat completions and measures what a chat user feels: time to first
 * token and time per token. Prints one JSON object.
 *
 * <pre>StreamProbe URL STREAMS TOKENS INTERVAL_MS [ROUNDS] [HEADER=VALUE ...]</pre>
 *
 * <p>With a large STREAMS and a long interval it also serves as the idle-connections scenario:
 * {@code errors} counts streams that did not end with {@code [DONE]}; the first failure is printed to
 * stderr. Warm-up rounds of at most 64 streams, not counted, warm up the client and the target
 * ({@code -Dprobe.warmupRounds=N}, default 1).
 *
 * <p>{@code -Dprobe.openRate=N} opens at most N streams a second, the way real clients arrive, instead
 * of all at once; {@code peak_open} reports how many were open at the same moment.
 */
public final class StreamProbe {

  private StreamProbe() {}

  public static void main(String[] args) throws Exception {
    String url = args[0];
    int streams = Integer.parseInt(args[1]);
    int tokens = Integer.parseInt(args[2]);
    long intervalMs = Long.parseLong(args[3]);
    int rounds = args.length > 4 ? Integer.parseInt(args[4]) : 1;
    // A header given as NAME=VALUE replaces the default of that name: one Authorization, the target's.
    Map<String, String> named = new TreeMap<>(String.CASE_INSENSITIVE_ORDER);
    named.put("Content-Type", "application/json");
    named.put("Authorization", "Bearer bench");
    for (String header : Arrays.asList(args).subList(Math.min(args.length, 5), args.length)) {
      int eq = header.indexOf('=');
      named.put(header.substring(0, eq), header.substring(eq + 1));
    }
    List<String> headers = new ArrayList<>();
    named.forEach((name, value) -> {
      headers.add(name);
      headers.add(value);
    });
    String body = "{\"model\":\"fake-model\",\"stream\":true,\"max_tokens\":" + tokens + ",\"fake_interval_ms\":" + intervalMs
        + ",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    HttpRequest request = HttpRequest.newBuilder(URI.create(url))
        .headers(headers.toArray(String[]::new))
        .POST(HttpRequest.BodyPublishers.ofString(body)).build();

    List<Double> firstTokenMs = new ArrayList<>();
    List<Double> perTokenMs = new ArrayList<>();
    AtomicInteger errors = new AtomicInteger();
    AtomicInteger warmUpErrors = new AtomicInteger();
    AtomicInteger open = new AtomicInteger();
    AtomicInteger peakOpen = new AtomicInteger();
    long openRate = Long.getLong("probe.openRate", 0);
    try (ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();
         HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).executor(executor).build()) {
      // Warm-up rounds (negative numbers) warm up the client and the target (connections, JIT) and are not counted.
      int warmupRounds = Integer.getInteger("probe.warmupRounds", 1);
      for (int round = -warmupRounds; round < rounds; round++) {
        List<CompletableFuture<double[]>> running = new ArrayList<>();
        // The warm-up needs a few streams, not all: thousands more would only use up ephemeral ports.
        int count = round >= 0 ? streams : Math.min(streams, 64);
        long roundStart = System.nanoTime();
        for (int i = 0; i < count; i++) {
          if (openRate > 0 && round >= 0) {
            long due = roundStart + i * 1_000_000_000L / openRate;
            long wait = due - System.nanoTime();
            if (wait > 0) {
              Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
            }
          }
          AtomicInteger counted = round >= 0 ? errors : warmUpErrors;
          running.add(CompletableFuture.supplyAsync(() -> {
            peakOpen.accumulateAndGet(open.incrementAndGet(), Math::max);
            try {
              return measure(http, request, counted);
            } finally {
              open.decrementAndGet();
            }
          }, executor));
        }
        for (CompletableFuture<double[]> one : running) {
          double[] result = one.join();
          if (result != null && round >= 0) {
            firstTokenMs.add(result[0]);
            perTokenMs.add(result[1]);
          }
        }
      }
    }
    System.out.printf("{\"streams\":%d,\"rounds\":%d,\"completed\":%d,\"errors\":%d,\"peak_open\":%d,"
            + "\"ttft_p50_ms\":%.3f,\"ttft_p99_ms\":%.3f,\"per_token_p50_ms\":%.3f,\"per_token_p99_ms\":%.3f}%n",
        streams, rounds, firstTokenMs.size(), errors.get(), peakOpen.get(), percentile(firstTokenMs, 50), percentile(firstTokenMs, 99),
        percentile(perTokenMs, 50), percentile(perTokenMs, 99));
  }

  /** Returns {time to first token, mean time between tokens} in ms, or null when the stream failed. */
  private static double[] measure(HttpClient http, HttpRequest request, AtomicInteger errors) {
    long start = System.nanoTime();
    long first = -1;
    long last = -1;
    int tokens = 0;
    boolean done = false;
    try {
      HttpResponse<Stream<String>> response = http.send(request, HttpResponse.BodyHandlers.ofLines());
      if (response.statusCode() != 200) {
        if (errors.incrementAndGet() == 1) {
          System.err.println("first failed stream: HTTP " + response.statusCode());
        }
        response.body().close();
        return null;
      }
      try (Stream<String> lines = response.body()) {
        for (String line : (Iterable<String>) lines::iterator) {
          if (line.equals("data: [DONE]")) {
            done = true;
          } else if (line.contains("\"content\":\"tok")) {
            long now = System.nanoTime();
            if (first < 0) {
              first = now;
            }
            last = now;
            tokens++;
          }
        }
      }
    } catch (IOException | InterruptedException e) {
      if (errors.incrementAndGet() == 1) {
        System.err.println("first failed stream: " + e);
      }
      return null;
    }
    if (!done || first < 0) {
      errors.incrementAndGet();
      return null;
    }
    double perToken = tokens > 1 ? (last - first) / 1e6 / (tokens - 1) : 0;
    return new double[] {(first - start) / 1e6, perToken};
  }

  private static double percentile(List<Double> values, int p) {
    if (values.isEmpty()) {
      return Double.NaN;
    }
    List<Double> sorted = values.stream().sorted().toList();
    return sorted.get(Math.min(sorted.size() - 1, (int) Math.ceil(p / 100.0 * sorted.size()) - 1));
  }
}
