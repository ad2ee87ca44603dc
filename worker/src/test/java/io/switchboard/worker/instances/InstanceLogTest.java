package io.switchboard.worker.instances;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** An instance's log on disk: rotated at its size limit, tailed across the rotated files. */
class InstanceLogTest {

  @TempDir
  Path dir;

  @Test
  void rotatesAtItsLimitKeepsThreeOldFilesAndTailsAcrossThem() throws Exception {
    Path file = dir.resolve("qwen/instance.log");
    InstanceLog log = new InstanceLog(file, 100, 3);
    for (int i = 0; i < 50; i++) {
      byte[] line = String.format("line %02d\n", i).getBytes(StandardCharsets.UTF_8); // 8 bytes
      log.write(line, 0, line.length);
    }
    assertTrue(Files.size(file) <= 100, "the current file stays under the limit");
    assertTrue(Files.exists(dir.resolve("qwen/instance.log.3")));
    assertFalse(Files.exists(dir.resolve("qwen/instance.log.4")), "older files are dropped");

    assertEquals(List.of("line 47", "line 48", "line 49"), log.tail(3));
    List<String> all = log.tail(-1);
    assertEquals(all.size(), all.stream().distinct().count());
    assertEquals("line 49", all.getLast());
    List<String> expected = IntStream.range(50 - all.size(), 50).mapToObj(i -> String.format("line %02d", i)).toList();
    assertEquals(expected, all, "what is kept is the newest lines, in order, across rotated files");
    assertEquals(36, log.tail(36).size(), "a tail reaches into the rotated files");

    log.delete();
    assertFalse(Files.exists(file));
    assertFalse(Files.exists(dir.resolve("qwen/instance.log.1")));
  }
}
