package io.switchboard.protocol;

import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;
import com.fasterxml.jackson.databind.JsonNode;

/**
 * A message between the server and an MCP relay, one JSON text frame on the {@code /api/mcp/connect}
 * WebSocket. The {@code type} field names the kind. JSON-RPC messages travel whole inside
 * {@link Rpc} and {@link RpcResult}; the relay speaks MCP to its server, the server speaks HTTP to
 * MCP clients, and this protocol only carries one to the other.
 */
@JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "type", defaultImpl = RelayMessage.Register.class)
@JsonSubTypes({
    @JsonSubTypes.Type(value = RelayMessage.Register.class, name = "register"),
    @JsonSubTypes.Type(value = RelayMessage.Registered.class, name = "registered"),
    @JsonSubTypes.Type(value = RelayMessage.Rpc.class, name = "rpc"),
    @JsonSubTypes.Type(value = RelayMessage.RpcResult.class, name = "rpc_result"),
    @JsonSubTypes.Type(value = RelayMessage.Cancel.class, name = "cancel"),
    @JsonSubTypes.Type(value = RelayMessage.Heartbeat.class, name = "heartbeat"),
})
public sealed interface RelayMessage {

  /**
   * Relay to server, first message. All fields are optional, and so is {@code type}: spec 000's
   * first message is {@code {id?, client_name?, client_key?}}. A relay that sends the id it was given
   * before takes its place back.
   */
  record Register(String id, String clientName, String clientKey, String version) implements RelayMessage {}

  /** Server to relay: accepted under this id; heartbeats every interval; answers larger than the limit are refused. */
  record Registered(String id, long heartbeatIntervalMs, int maxMessageBytes) implements RelayMessage {}

  /**
   * Server to relay: one JSON-RPC message from an MCP client (a request, or a notification when it
   * has no {@code id}), with the client's {@code Authorization} header, if any.
   */
  record Rpc(long req, JsonNode payload, String auth) implements RelayMessage {}

  /**
   * Relay to server: the outcome of {@link Rpc} {@code req}. {@code status} is the HTTP status for the
   * client: 200 with the JSON-RPC answer, 202 for a notification (no payload), 401 when the relay
   * refused the client's token, 502 when the MCP server failed; the payload is a JSON-RPC error then.
   */
  record RpcResult(long req, int status, JsonNode payload) implements RelayMessage {}

  /** Server to relay: the client went away; stop waiting for {@code req}. */
  record Cancel(long req) implements RelayMessage {}

  /** Either way, so that each side knows the other is alive. */
  record Heartbeat(long ts) implements RelayMessage {}
}
