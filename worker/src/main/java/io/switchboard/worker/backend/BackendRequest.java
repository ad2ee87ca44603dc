package io.switchboard.worker.backend;

import io.vertx.core.buffer.Buffer;
import java.util.Map;

/**
 * One HTTP request for a backend.
 *
 * @param path relative to the backend's OpenAI base URL, for example {@code /chat/completions}
 * @param headers the client's headers worth forwarding; never its credentials
 */
public record BackendRequest(String method, String path, Map<String, String> headers, boolean stream, Buffer body) {}
