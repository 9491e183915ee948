package io.predcode.spark;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

/** This process's TCP sockets, read from /proc (Linux): what it listens on and talks to. */
final class Sockets {
    private Sockets() {}

    /** The TCP sockets of the process {@code pid} ("self" for this one) whose local or remote address is not loopback, described; empty when all are. */
    static List<String> notLoopback(String pid) throws IOException {
        return tcp(pid).stream().filter(e -> !e.endsWith(" ok")).toList();
    }

    /** The process's TCP sockets as "table local HEX remote HEX state ST ok|off-loopback" (other sockets, Unix or UDP, are not listed). */
    static List<String> tcp(String pid) throws IOException {
        Set<String> inodes = new HashSet<>();
        try (Stream<Path> fds = Files.list(Path.of("/proc", pid, "fd"))) {
            for (Path fd : fds.toList()) {
                try {
                    String target = Files.readSymbolicLink(fd).toString();
                    if (target.startsWith("socket:[")) inodes.add(target.substring(8, target.length() - 1));
                } catch (IOException e) {
                    // closed while listing
                }
            }
        }
        List<String> found = new ArrayList<>();
        for (String table : new String[]{"tcp", "tcp6"}) {
            List<String> lines = Files.readAllLines(Path.of("/proc", pid, "net", table));
            for (String line : lines.subList(1, lines.size())) {
                String[] f = line.trim().split("\\s+");
                if (!inodes.contains(f[9])) continue;
                boolean listening = f[3].equals("0A"), ok = loopback(f[1]) && (listening || loopback(f[2]));
                found.add(table + " local " + f[1] + " remote " + f[2] + " state " + f[3] + (ok ? " ok" : " off-loopback"));
            }
        }
        return found;
    }

    /** A /proc/net address "HEX:PORT": 127.x.x.x (IPv4, little-endian), ::1 or ::ffff:127.x.x.x. */
    static boolean loopback(String addressAndPort) {
        String a = addressAndPort.substring(0, addressAndPort.indexOf(':'));
        if (a.length() == 8) return a.endsWith("7F");
        return a.equals("00000000000000000000000001000000") || a.startsWith("0000000000000000FFFF0000") && a.endsWith("7F");
    }
}
