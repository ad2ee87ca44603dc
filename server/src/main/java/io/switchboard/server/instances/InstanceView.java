package io.switchboard.server.instances;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * An instance as the API shows it.
 *
 * @param port where it listens, while it is not stopped
 * @param pid its process, while it has one
 * @param restarts crashes restarted in a row
 * @param lastError why it last failed, until it starts again
 * @param options its config, as it was given
 */
record InstanceView(String name, String status, long created, Integer port, Long pid, int restarts, String lastError,
    JsonNode options) {

  static InstanceView of(Instance instance) {
    var process = instance.process;
    boolean listening = instance.port > 0 && instance.status != Instance.Status.STOPPED;
    return new InstanceView(instance.name, instance.status.id(), instance.created, listening ? instance.port : null,
        process == null ? null : process.pid(), instance.restarts, instance.lastError, instance.config.toJson());
  }
}
