package io.switchboard.server.http;

import io.switchboard.server.auth.Authenticator;
import io.switchboard.server.auth.RateLimiter;
import io.vertx.ext.web.Router;

/**
 * What a {@link Capability} mounts its routes with.
 *
 * @param web the API's router
 * @param metricsWeb the router of {@code /metrics}: {@code web}, or the metrics port's own
 * @param auth turns a request's credentials into a principal; routes put {@code auth.require(scope)} first
 * @param admission counts requests in flight and refuses new ones while the server drains
 * @param limits what a person may ask of the OpenAI endpoints
 * @param cors which web pages may call the API from a browser, for the edges that answer outside the router
 */
public record Mount(Router web, Router metricsWeb, Authenticator auth, Admission admission, RateLimiter limits, CorsPolicy cors) {}
