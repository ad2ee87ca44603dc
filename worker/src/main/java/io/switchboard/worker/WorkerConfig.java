package io.switchboard.worker;

import java.time.Duration;

/**
 * How a worker dials in and what it offers.
 *
 * @param serverUrl the server's base URL ({@code http://host:8080}); the connect path is added
 * @param clientKey the server's client key, or null when the server has none
 * @param workerId a stable id to keep across restarts, or null to let the server assign one
 * @param workerName a display name, or null for the host name
 * @param maxConcurrency how many requests the server may run here at once
 * @param embeddingBatchSize the most inputs per embeddings request (0: no limit)
 * @param reconnectInitial the first wait before reconnecting; it doubles up to {@code reconnectMax}
 * @param modelPollInterval how often to ask the backend for its models (zero: never)
 * @param drainTimeout how long a drain waits for requests in flight before it gives up on them
 * @param maxFrameBytes the largest WebSocket frame sent or accepted
 */
public record WorkerConfig(
    String serverUrl,
    String clientKey,
    String workerId,
    String workerName,
    int maxConcurrency,
    int embeddingBatchSize,
    Duration reconnectInitial,
    Duration reconnectMax,
    Duration modelPollInterval,
    Duration drainTimeout,
    int maxFrameBytes) {

  public static final int DEFAULT_MAX_FRAME_BYTES = 1 << 20;

  public WorkerConfig {
    if (serverUrl == null || serverUrl.isBlank()) {
      throw new IllegalArgumentException("a worker needs the server URL (--server)");
    }
    if (maxConcurrency < 1) {
      throw new IllegalArgumentException("max concurrency must be at least 1, got " + maxConcurrency);
    }
    if (embeddingBatchSize < 0) {
      throw new IllegalArgumentException("embedding batch size must be 0 or more, got " + embeddingBatchSize);
    }
  }

  /** A configuration with the usual defaults, for the given server. */
  public static WorkerConfig of(String serverUrl, String clientKey) {
    return new WorkerConfig(serverUrl, clientKey, null, null, 4, 0, Duration.ofSeconds(1), Duration.ofSeconds(30),
        Duration.ofMinutes(1), Duration.ofMinutes(1), DEFAULT_MAX_FRAME_BYTES);
  }

  public WorkerConfig withIdentity(String id, String name) {
    return new WorkerConfig(serverUrl, clientKey, id, name, maxConcurrency, embeddingBatchSize, reconnectInitial,
        reconnectMax, modelPollInterval, drainTimeout, maxFrameBytes);
  }

  public WorkerConfig withCapacity(int concurrency, int batchSize) {
    return new WorkerConfig(serverUrl, clientKey, workerId, workerName, concurrency, batchSize, reconnectInitial,
        reconnectMax, modelPollInterval, drainTimeout, maxFrameBytes);
  }

  public WorkerConfig withTimings(Duration reconnectFirst, Duration reconnectLast, Duration modelPoll, Duration drain) {
    return new WorkerConfig(serverUrl, clientKey, workerId, workerName, maxConcurrency, embeddingBatchSize,
        reconnectFirst, reconnectLast, modelPoll, drain, maxFrameBytes);
  }
}
