package io.switchboard.server.llm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.switchboard.fakeupstream.FakeUpstream;
import io.switchboard.server.Chromium;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The dashboard in a real browser: it shows a worker that connects after the page loaded. */
class DashboardTest {

  private static final Path SCREENSHOTS = Path.of("target", "screenshots");

  @Test
  void theDashboardShowsAWorkerThatConnectsAfterThePageLoaded() throws Exception {
    assumeTrue(Chromium.installed(), "Debian's chromium is not installed (.ci/run installs it)");
    try (TestGateway gateway = TestGateway.start(TestGateway.config("sk-dash", null, 10, Duration.ofSeconds(5),
        Duration.ofSeconds(10), List.of()))) {
      try (Chromium browser = Chromium.open(gateway.url() + "/state")) {
        browser.awaitText("the key prompt", text -> text.contains("API key"), Duration.ofSeconds(20));
        browser.evaluate("document.getElementById('key').value = 'sk-dash';"
            + " document.querySelector('#login button').click(); 'sent'");
        browser.awaitText("the live dashboard", text -> text.contains("live") && text.toLowerCase().contains("not_ready"), Duration.ofSeconds(20));

        gateway.worker(gateway.fake(FakeUpstream.Behavior.defaults().withModels("qwen")), c -> c.withIdentity("dash-gpu", "Lab GPU"));
        String shown = browser.awaitText("the new worker", text -> text.contains("dash-gpu"), Duration.ofSeconds(20));
        assertTrue(shown.contains("Lab GPU") && shown.contains("qwen"), shown);
        assertTrue(shown.toLowerCase().contains("llm · ready"), shown);
        assertEquals("1", browser.evaluate("String(document.querySelectorAll('#plugin-llm tbody[data-list=workers] tr.row').length)"));
        browser.screenshot(SCREENSHOTS.resolve("dashboard.png"));
        assertTrue(Files.size(SCREENSHOTS.resolve("dashboard.png")) > 1000);
      }
      try (Chromium wrongKey = Chromium.open(gateway.url() + "/state#key=wrong")) {
        wrongKey.awaitText("the key prompt again", text -> text.contains("not accepted"), Duration.ofSeconds(20));
      }
    }
  }
}
