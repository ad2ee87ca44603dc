package io.switchboard.server.docs;

import io.switchboard.server.http.Capability;
import io.switchboard.server.http.Mount;
import io.switchboard.server.http.Resources;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.handler.StaticHandler;

/**
 * The API's own description: the OpenAPI 3.1 document at {@code /api/client/openapi.json} and
 * Swagger UI at {@code /api/client/} (also {@code /swagger/}), served from the swagger-ui web jar so
 * that it works offline.
 */
public final class ApiDocs implements Capability {

  /** The swagger-ui web jar's files; its version is the one in server/pom.xml. */
  private static final String SWAGGER_UI = "META-INF/resources/webjars/swagger-ui/5.30.2";
  private static final String OPENAPI = Resources.text("/api/openapi.json");
  private static final String PAGE = Resources.text("/api/swagger.html");

  @Override
  public void mount(Mount mount) {
    Router web = mount.web();
    web.get("/api/client/openapi.json").handler(ctx -> ctx.response().putHeader("Content-Type", "application/json").end(OPENAPI));
    web.get("/api/client/*").handler(ctx -> {
      String rest = ctx.pathParam("*");
      if (rest == null || rest.isEmpty() || rest.equals("index.html")) {
        ctx.response().putHeader("Content-Type", "text/html; charset=utf-8").end(PAGE);
      } else {
        ctx.next();
      }
    }).handler(StaticHandler.create(SWAGGER_UI).setCachingEnabled(true));
    web.get("/swagger/*").handler(ctx -> ctx.redirect("/api/client/"));
  }
}
