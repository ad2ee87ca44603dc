package io.switchboard.worker.backend;

/**
 * Why a request did not complete.
 *
 * @param code one of {@link io.switchboard.protocol.Failures}
 */
public record Failure(String code, String message) {}
