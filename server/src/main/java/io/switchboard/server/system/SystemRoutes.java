package io.switchboard.server.system;

import io.switchboard.protocol.BuildInfo;
import io.switchboard.server.http.Admission;
import io.switchboard.server.http.Capability;
import io.switchboard.server.http.Mount;
import io.vertx.ext.web.Router;

/** Health and version: public, answered without touching anything else. */
public final class SystemRoutes implements Capability {

  @Override
  public void mount(Mount mount) {
    Router web = mount.web();
    Admission admission = mount.admission();
    web.get("/healthz").handler(ctx -> {
      boolean draining = admission.draining();
      ctx.response()
          .setStatusCode(draining ? 503 : 200)
          .putHeader("Content-Type", "application/json")
          .end(draining ? "{\"status\":\"draining\"}" : "{\"status\":\"ok\"}");
    });
    web.get("/api/v1/version").handler(ctx -> {
      BuildInfo build = BuildInfo.current();
      ctx.response()
          .putHeader("Content-Type", "text/plain; charset=utf-8")
          .end("Version: " + build.version() + "\nCommit: " + build.commit() + "\nBuild Time: " + build.buildTime() + "\n");
    });
  }
}
