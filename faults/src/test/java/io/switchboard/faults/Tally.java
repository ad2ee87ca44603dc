package io.switchboard.faults;

import java.net.http.HttpResponse;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * How the requests sent through a fault ended, as a client judges them: a whole answer, a clear
 * error (an error status with an error body, or a stream ended by an error event), or neither
 * (lost: cut short with nothing said), or no end at all within the bound (hung).
 */
final class Tally {
  int sent;
  int succeeded;
  int failedClearly;
  int lost;
  int hung;

  enum End { SUCCEEDED, FAILED_CLEARLY, LOST }

  static End judge(HttpResponse<String> response) {
    return judge(response.statusCode(), response.headers().firstValue("Content-Type").orElse(""),
        response.body() == null ? "" : response.body());
  }

  static End judge(int status, String contentType, String body) {
    if (status >= 400) {
      return body.contains("\"error\"") || body.contains("\"detail\"") ? End.FAILED_CLEARLY : End.LOST;
    }
    boolean streamed = contentType.startsWith("text/event-stream");
    if (!streamed) {
      return body.contains("\"choices\"") ? End.SUCCEEDED : End.LOST;
    }
    if (body.endsWith("data: [DONE]\n\n")) {
      return End.SUCCEEDED;
    }
    String[] events = body.strip().split("\n\n");
    return events[events.length - 1].contains("\"error\"") ? End.FAILED_CLEARLY : End.LOST;
  }

  /** Waits for every answer, each at most {@code boundSeconds} from now, and counts how each ended. */
  static Tally of(List<CompletableFuture<HttpResponse<String>>> answers, long boundSeconds) throws InterruptedException {
    Tally tally = new Tally();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(boundSeconds);
    for (CompletableFuture<HttpResponse<String>> answer : answers) {
      tally.sent++;
      try {
        tally.count(judge(answer.get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)));
      } catch (TimeoutException e) {
        tally.hung++;
        answer.cancel(true);
      } catch (Exception e) {
        tally.lost++;
      }
    }
    return tally;
  }

  /** A stream being read as it arrives, so that a fault can strike once the client has had part of it. */
  static final class Reading {
    final HttpResponse<java.io.InputStream> response;
    final StringBuffer text = new StringBuffer();
    final CompletableFuture<String> body = new CompletableFuture<>();
    volatile int events;

    Reading(HttpResponse<java.io.InputStream> response) {
      this.response = response;
      Thread.ofVirtual().start(() -> {
        try (var in = new java.io.BufferedReader(new java.io.InputStreamReader(response.body(), java.nio.charset.StandardCharsets.UTF_8))) {
          for (String line = in.readLine(); line != null; line = in.readLine()) {
            text.append(line).append('\n');
            if (line.startsWith("data: ")) {
              events++;
            }
          }
          body.complete(text.toString());
        } catch (java.io.IOException e) {
          body.complete(text.toString());
        }
      });
    }

    End end(long timeoutMs) throws Exception {
      return judge(response.statusCode(), response.headers().firstValue("Content-Type").orElse(""),
          body.get(timeoutMs, TimeUnit.MILLISECONDS));
    }
  }

  /** Waits for every stream, each at most {@code boundSeconds} from now, and counts how each ended. */
  static Tally ofReadings(List<Reading> readings, long boundSeconds) {
    Tally tally = new Tally();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(boundSeconds);
    for (Reading reading : readings) {
      tally.sent++;
      try {
        tally.count(reading.end(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime()))));
      } catch (TimeoutException e) {
        tally.hung++;
      } catch (Exception e) {
        tally.lost++;
      }
    }
    return tally;
  }

  void count(End end) {
    switch (end) {
      case SUCCEEDED -> succeeded++;
      case FAILED_CLEARLY -> failedClearly++;
      case LOST -> lost++;
    }
  }

  void add(Tally other) {
    sent += other.sent;
    succeeded += other.succeeded;
    failedClearly += other.failedClearly;
    lost += other.lost;
    hung += other.hung;
  }

  Figures.Fault row(String fault, long recoveryMs, String note) {
    return new Figures.Fault(fault, sent, succeeded, failedClearly, lost, hung, recoveryMs, note);
  }
}
