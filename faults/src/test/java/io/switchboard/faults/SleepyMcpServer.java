package io.switchboard.faults;

import io.modelcontextprotocol.json.McpJsonDefaults;
import io.modelcontextprotocol.server.McpServer;
import io.modelcontextprotocol.server.McpSyncServer;
import io.modelcontextprotocol.server.transport.StdioServerTransportProvider;
import io.modelcontextprotocol.spec.McpSchema;
import java.util.Map;

/**
 * An MCP server (the MCP Java SDK's, over stdio) for relays under fault: {@code echo} says
 * {@code text} back, {@code slow} answers after {@code ms}, {@code hang} never answers.
 */
public final class SleepyMcpServer {

  private SleepyMcpServer() {}

  private static McpSchema.Tool tool(String name) {
    return McpSchema.Tool.builder().name(name).description(name)
        .inputSchema(Map.of("type", "object", "properties", Map.of("text", Map.of("type", "string"), "ms", Map.of("type", "integer"))))
        .build();
  }

  private static McpSchema.CallToolResult after(long ms, String text) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    return McpSchema.CallToolResult.builder().addTextContent(text).build();
  }

  public static void main(String[] args) {
    McpSyncServer server = McpServer.sync(new StdioServerTransportProvider(McpJsonDefaults.getMapper()))
        .serverInfo("sleepy", "1.0")
        .capabilities(McpSchema.ServerCapabilities.builder().tools(true).build())
        .toolCall(tool("echo"), (exchange, call) -> after(0, "echo: " + call.arguments().get("text")))
        .toolCall(tool("slow"), (exchange, call) -> after(((Number) call.arguments().getOrDefault("ms", 100)).longValue(), "done"))
        .toolCall(tool("hang"), (exchange, call) -> after(Long.MAX_VALUE, "never"))
        .build();
    // A stdio server lives as long as its client: when the relay is gone, even killed with no
    // goodbye, so is this one, as servers that exit at the end of their input do.
    ProcessHandle.current().parent().ifPresent(relay -> relay.onExit().join());
    server.close();
    System.exit(0);
  }
}
