package io.switchboard.server.llm;

import io.switchboard.server.http.ApiError;
import io.switchboard.server.http.JsonReply;
import io.vertx.ext.web.RoutingContext;
import java.util.ArrayList;
import java.util.List;

/** {@code GET /v1/models}, {@code GET /v1/models/{id}} and a worker's drain: what the router knows, as the API shows it. */
final class ModelRoutes {

  /**
   * One model in OpenAI's shape, with where it runs: {@code status} for a managed instance,
   * {@code workers} for a model that dialed-in or local workers serve.
   */
  record ModelObject(String id, String object, long created, String ownedBy, String status, List<String> workers) {
    static ModelObject of(ManagedModels.Entry instance) {
      return new ModelObject(instance.id(), "model", instance.created(), "instance", instance.status(), null);
    }

    static ModelObject of(LlmRouter.ModelEntry model) {
      return new ModelObject(model.id(), "model", model.created(), "worker", null, model.workers());
    }
  }

  record ModelList(String object, List<ModelObject> data) {}

  record Draining(String id, String status) {}

  private final LlmRouter router;
  private final ManagedModels managed;

  ModelRoutes(LlmRouter router, ManagedModels managed) {
    this.router = router;
    this.managed = managed;
  }

  /** Managed instances first, then the models of workers that no instance of the same name hides. */
  void list(RoutingContext ctx) {
    List<ManagedModels.Entry> instances = managed.list();
    List<ModelObject> data = new ArrayList<>();
    instances.forEach(instance -> data.add(ModelObject.of(instance)));
    router.models().stream()
        .filter(model -> instances.stream().noneMatch(instance -> instance.id().equals(model.id())))
        .forEach(model -> data.add(ModelObject.of(model)));
    JsonReply.send(ctx.response(), 200, new ModelList("list", data));
  }

  void get(RoutingContext ctx) {
    String id = ctx.pathParam("*");
    managed.list().stream().filter(instance -> instance.id().equals(id)).findFirst().ifPresentOrElse(
        instance -> JsonReply.send(ctx.response(), 200, ModelObject.of(instance)),
        () -> router.model(id).ifPresentOrElse(
            model -> JsonReply.send(ctx.response(), 200, ModelObject.of(model)),
            () -> ApiError.modelNotFound(id).send(ctx.response())));
  }

  void drainWorker(RoutingContext ctx) {
    String id = ctx.pathParam("id");
    router.worker(id).ifPresentOrElse(worker -> {
      router.update(worker, null, null, true);
      if (worker.backend() instanceof WorkerConnection connection) {
        connection.drain();
      }
      JsonReply.send(ctx.response(), 202, new Draining(id, "draining"));
    }, () -> ApiError.notFound("no worker with id '" + id + "' is connected").send(ctx.response()));
  }

}
