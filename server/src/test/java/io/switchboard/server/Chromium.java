package io.switchboard.server;

import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.WebSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Debian's headless Chromium, driven over the DevTools protocol: open a page, read what it shows,
 * take a screenshot. For page tests, with the flags that work on this closed network.
 */
public final class Chromium implements AutoCloseable {

  public static final Path BINARY = Path.of("/usr/bin/chromium");
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Pattern LISTENING = Pattern.compile("DevTools listening on ws://127\\.0\\.0\\.1:(\\d+)/");

  private final Process process;
  private final Path profile;
  private final WebSocket page;
  private final AtomicInteger ids = new AtomicInteger();
  private final Map<Integer, CompletableFuture<JsonNode>> answers = new ConcurrentHashMap<>();

  private Chromium(Process process, Path profile, WebSocket page) {
    this.process = process;
    this.profile = profile;
    this.page = page;
  }

  public static boolean installed() {
    return Files.isExecutable(BINARY);
  }

  /** Starts Chromium on {@code url} and connects to its page. */
  public static Chromium open(String url) throws Exception {
    Path profile = Files.createTempDirectory("chromium-profile");
    Process process = new ProcessBuilder(BINARY.toString(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--window-size=1280,900", "--remote-debugging-port=0", "--user-data-dir=" + profile, url)
        .redirectErrorStream(true).start();
    int port = devToolsPort(process);
    HttpClient http = HttpClient.newHttpClient();
    String socket = null;
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (socket == null && System.nanoTime() < deadline) {
      JsonNode targets = JSON.readTree(http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/json/list")).build(),
          HttpResponse.BodyHandlers.ofString()).body());
      for (JsonNode target : targets) {
        if (target.path("type").asText().equals("page")) {
          socket = target.path("webSocketDebuggerUrl").asText();
        }
      }
      if (socket == null) {
        Thread.sleep(100);
      }
    }
    if (socket == null) {
      fail("Chromium opened no page");
    }
    Chromium[] self = new Chromium[1];
    WebSocket ws = http.newWebSocketBuilder().buildAsync(URI.create(socket), new WebSocket.Listener() {
      private final StringBuilder text = new StringBuilder();

      @Override
      public CompletionStage<?> onText(WebSocket webSocket, CharSequence data, boolean last) {
        text.append(data);
        if (last) {
          String message = text.toString();
          text.setLength(0);
          self[0].onMessage(message);
        }
        webSocket.request(1);
        return null;
      }
    }).get(10, TimeUnit.SECONDS);
    self[0] = new Chromium(process, profile, ws);
    return self[0];
  }

  private static int devToolsPort(Process process) throws IOException {
    BufferedReader output = process.inputReader(StandardCharsets.UTF_8);
    StringBuilder seen = new StringBuilder();
    for (String line = output.readLine(); line != null; line = output.readLine()) {
      seen.append(line).append('\n');
      Matcher m = LISTENING.matcher(line);
      if (m.find()) {
        Thread.ofVirtual().start(() -> output.lines().forEach(ignored -> { }));
        return Integer.parseInt(m.group(1));
      }
    }
    throw new IllegalStateException("Chromium did not start:\n" + seen);
  }

  private void onMessage(String message) {
    try {
      JsonNode json = JSON.readTree(message);
      CompletableFuture<JsonNode> waiting = json.has("id") ? answers.remove(json.get("id").asInt()) : null;
      if (waiting != null) {
        waiting.complete(json);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private JsonNode send(String method, ObjectNode params) throws Exception {
    int id = ids.incrementAndGet();
    CompletableFuture<JsonNode> answer = new CompletableFuture<>();
    answers.put(id, answer);
    ObjectNode message = JSON.createObjectNode().put("id", id).put("method", method);
    message.set("params", params);
    page.sendText(message.toString(), true).get(10, TimeUnit.SECONDS);
    return answer.get(20, TimeUnit.SECONDS);
  }

  /** The value of a JavaScript expression in the page. */
  public String evaluate(String expression) throws Exception {
    JsonNode answer = send("Runtime.evaluate", JSON.createObjectNode().put("expression", expression).put("returnByValue", true));
    if (answer.has("error") || answer.at("/result/exceptionDetails").isObject()) {
      return "(evaluation failed: " + answer + ")";
    }
    return answer.at("/result/result/value").asText();
  }

  /** The page's visible text. */
  public String text() throws Exception {
    return evaluate("document.body.innerText");
  }

  /** Waits until the page's text passes the test; fails with what the page showed. */
  public String awaitText(String what, Predicate<String> test, Duration within) throws Exception {
    long deadline = System.nanoTime() + within.toNanos();
    String text = "";
    while (System.nanoTime() < deadline) {
      text = text();
      if (test.test(text)) {
        return text;
      }
      Thread.sleep(200);
    }
    fail("the page never showed " + what + "; it showed:\n" + text);
    return text;
  }

  /** Saves a PNG of the page. */
  public void screenshot(Path file) throws Exception {
    JsonNode answer = send("Page.captureScreenshot", JSON.createObjectNode().put("format", "png"));
    Files.createDirectories(file.getParent());
    Files.write(file, Base64.getDecoder().decode(answer.at("/result/data").asText()));
  }

  /** Ends the browser and the processes it started, which write to the profile until they are gone, then deletes the profile. */
  @Override
  public void close() throws Exception {
    page.abort();
    List<ProcessHandle> children = process.descendants().toList();
    process.destroy();
    children.forEach(ProcessHandle::destroy);
    if (!process.waitFor(5, TimeUnit.SECONDS)) {
      process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
    }
    for (ProcessHandle child : children) {
      try {
        child.onExit().get(5, TimeUnit.SECONDS);
      } catch (TimeoutException e) {
        child.destroyForcibly();
      }
    }
    try (var files = Files.walk(profile)) {
      files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    }
  }
}
