package io.switchboard.worker.instances;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;

/**
 * An instance's output on disk: {@code instance.log}, rotated to {@code instance.log.1} ... {@code .N}
 * when it passes its size limit, so a chatty model server cannot fill the disk. Safe for one writer
 * and any number of readers.
 */
public final class InstanceLog {

  private final Path file;
  private final long maxBytes;
  private final int keep;
  private OutputStream out;
  private long size;

  /**
   * @param file the current log file; its directory is created
   * @param maxBytes the size at which the file is rotated
   * @param keep how many rotated files to keep
   */
  public InstanceLog(Path file, long maxBytes, int keep) {
    this.file = file;
    this.maxBytes = maxBytes;
    this.keep = keep;
    try {
      Files.createDirectories(file.getParent());
      this.size = Files.exists(file) ? Files.size(file) : 0;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create log directory for " + file, e);
    }
  }

  /** The directory the log lives in, which is also the instance's working directory. */
  public Path directory() {
    return file.getParent();
  }

  /** Appends output of the process. */
  public synchronized void write(byte[] bytes, int offset, int length) throws IOException {
    if (size + length > maxBytes && size > 0) {
      rotate();
    }
    if (out == null) {
      out = Files.newOutputStream(file, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }
    out.write(bytes, offset, length);
    out.flush();
    size += length;
  }

  /** Appends a line of Switchboard's own, such as why the process was started or stopped. */
  public void note(String text) {
    byte[] line = ("[switchboard " + Instant.now() + "] " + text + "\n").getBytes(StandardCharsets.UTF_8);
    try {
      write(line, 0, line.length);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + file, e);
    }
  }

  /** The last {@code lines} lines, oldest first, across rotated files; all of them when {@code lines < 0}. */
  public synchronized List<String> tail(int lines) throws IOException {
    Deque<String> kept = new ArrayDeque<>();
    for (int i = 0; i <= keep && (lines < 0 || kept.size() < lines); i++) {
      Path part = i == 0 ? file : rotated(i);
      if (!Files.exists(part)) {
        break;
      }
      List<String> partLines = Files.readAllLines(part, StandardCharsets.UTF_8);
      for (int j = partLines.size() - 1; j >= 0 && (lines < 0 || kept.size() < lines); j--) {
        kept.addFirst(partLines.get(j));
      }
    }
    return new ArrayList<>(kept);
  }

  public synchronized void close() {
    if (out != null) {
      try {
        out.close();
      } catch (IOException ignored) {
        // Closing a log that is being deleted or whose disk went away; nothing to do.
      }
      out = null;
    }
  }

  /** Deletes the log and its rotated files. */
  public synchronized void delete() throws IOException {
    close();
    for (int i = 0; i <= keep; i++) {
      Files.deleteIfExists(i == 0 ? file : rotated(i));
    }
  }

  private void rotate() throws IOException {
    close();
    Files.deleteIfExists(rotated(keep));
    for (int i = keep - 1; i >= 1; i--) {
      if (Files.exists(rotated(i))) {
        Files.move(rotated(i), rotated(i + 1), StandardCopyOption.REPLACE_EXISTING);
      }
    }
    if (keep > 0) {
      Files.move(file, rotated(1), StandardCopyOption.REPLACE_EXISTING);
    } else {
      Files.deleteIfExists(file);
    }
    size = 0;
  }

  private Path rotated(int index) {
    return file.resolveSibling(file.getFileName() + "." + index);
  }
}
