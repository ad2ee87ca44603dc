package io.switchboard.server.instances;

import io.switchboard.server.ServerConfig;
import io.switchboard.server.http.ApiError;
import io.switchboard.server.http.ApiException;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.util.Map;

/** Gives each starting instance a port: its own when it names one, else the first free one of {@code instances.port_range}. */
final class PortAllocator {

  private final Map<String, Instance> instances;
  private final ServerConfig.InstanceSettings settings;

  PortAllocator(Map<String, Instance> instances, ServerConfig.InstanceSettings settings) {
    this.instances = instances;
    this.settings = settings;
  }

  /** A free port for {@code instance}, reserved for it; 409 when there is none. */
  int allocate(Instance instance) {
    Integer fixed = instance.config.port();
    if (fixed != null) {
      if (!free(fixed)) {
        throw new ApiException(ApiError.conflict("port_in_use", "port " + fixed + " of instance '" + instance.name + "' is in use"));
      }
      return fixed;
    }
    synchronized (instances) {
      for (int port = settings.firstPort(); port <= settings.lastPort(); port++) {
        int candidate = port;
        boolean taken = instances.values().stream().anyMatch(i -> i != instance && i.port == candidate);
        if (!taken && free(port)) {
          instance.port = port;
          return port;
        }
      }
    }
    throw new ApiException(ApiError.conflict("no_free_port", "no free port in instances.port_range " + settings.portRange()));
  }

  private static boolean free(int port) {
    try (ServerSocket socket = new ServerSocket(port, 1, InetAddress.getLoopbackAddress())) {
      socket.setReuseAddress(true);
      return true;
    } catch (IOException e) {
      return false;
    }
  }
}
