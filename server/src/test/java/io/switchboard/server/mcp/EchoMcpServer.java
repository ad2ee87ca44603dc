package io.switchboard.server.mcp;

import io.modelcontextprotocol.json.McpJsonDefaults;
import io.modelcontextprotocol.server.McpServer;
import io.modelcontextprotocol.server.McpSyncServer;
import io.modelcontextprotocol.server.transport.StdioServerTransportProvider;
import io.modelcontextprotocol.spec.McpSchema;
import java.util.Map;

/**
 * A real MCP server from the MCP Java SDK, run over stdio by the relay in tests. Its tools:
 * {@code echo} (says back {@code text}), {@code fail} (a tool error), {@code slow} (waits {@code ms}).
 */
public final class EchoMcpServer {

  private EchoMcpServer() {}

  static McpSchema.Tool tool(String name, String description) {
    return McpSchema.Tool.builder().name(name).description(description)
        .inputSchema(Map.of("type", "object", "properties", Map.of("text", Map.of("type", "string"), "ms", Map.of("type", "integer"))))
        .build();
  }

  static McpServer.SyncSpecification<?> withTools(McpServer.SyncSpecification<?> spec, String prefix) {
    return spec.serverInfo("echo-server", "1.0")
        .capabilities(McpSchema.ServerCapabilities.builder().tools(true).build())
        .toolCall(tool("echo", "Says the text back"), (exchange, call) -> McpSchema.CallToolResult.builder()
            .addTextContent(prefix + call.arguments().get("text")).build())
        .toolCall(tool("fail", "Always fails"), (exchange, call) -> McpSchema.CallToolResult.builder()
            .addTextContent("the tool failed on purpose").isError(true).build())
        .toolCall(tool("slow", "Waits, then answers"), (exchange, call) -> {
          try {
            Thread.sleep(((Number) call.arguments().getOrDefault("ms", 100)).longValue());
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
          return McpSchema.CallToolResult.builder().addTextContent("done " + call.arguments().get("text")).build();
        });
  }

  public static void main(String[] args) throws InterruptedException {
    McpSyncServer server = withTools(McpServer.sync(new StdioServerTransportProvider(McpJsonDefaults.getMapper())), "echo: ").build();
    Thread.currentThread().join();
    server.close();
  }
}
