package io.switchboard.relay;

import io.modelcontextprotocol.json.McpJsonDefaults;
import io.modelcontextprotocol.server.McpServer;
import io.modelcontextprotocol.server.McpSyncServer;
import io.modelcontextprotocol.server.transport.StdioServerTransportProvider;
import io.modelcontextprotocol.spec.McpSchema;
import java.util.Map;

/** An MCP server (the MCP Java SDK's, over stdio) with one tool, {@code echo}, that says {@code text} back. */
public final class EchoMcpServer {

  private EchoMcpServer() {}

  public static void main(String[] args) {
    McpSchema.Tool echo = McpSchema.Tool.builder().name("echo").description("says text back")
        .inputSchema(Map.of("type", "object", "properties", Map.of("text", Map.of("type", "string"))))
        .build();
    McpSyncServer server = McpServer.sync(new StdioServerTransportProvider(McpJsonDefaults.getMapper()))
        .serverInfo("echo", "1.0")
        .capabilities(McpSchema.ServerCapabilities.builder().tools(true).build())
        .toolCall(echo, (exchange, call) -> McpSchema.CallToolResult.builder()
            .addTextContent("echo: " + call.arguments().get("text")).build())
        .build();
    // A stdio server lives as long as its client.
    ProcessHandle.current().parent().ifPresent(parent -> parent.onExit().join());
    server.close();
    System.exit(0);
  }
}
