package dev.tornadolora.spark;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import java.util.Locale;

/**
 * The mesh's all-reduce alone, between processes (a benchmark, not a test: scripts/spark-overhead.sh runs it):
 * {@code SIZE} JVMs, each {@code PeerMeshBench RANK SIZE FLOATS ITERATIONS DIR}, meet through files in DIR (the
 * rendezvous Spark's driver does otherwise), warm up for 200 all-reduces, then time ITERATIONS of FLOATS floats
 * and print the median, 90th percentile and minimum.
 */
public final class PeerMeshBench {
    private PeerMeshBench() {}

    public static void main(String[] args) throws Exception {
        int rank = Integer.parseInt(args[0]), size = Integer.parseInt(args[1]), n = Integer.parseInt(args[2]);
        int iterations = Integer.parseInt(args[3]);
        Path dir = Path.of(args[4]);
        try (PeerMesh mesh = new PeerMesh(files(dir, rank, size), "127.0.0.1", 0, PeerMesh.Settings.DEFAULT, () -> false)) {
            float[] g = new float[n];
            for (int i = 0; i < Math.min(200, 10 * iterations); i++) mesh.sumInRankOrder(g, new byte[8]);
            long[] t = new long[iterations];
            for (int i = 0; i < iterations; i++) {
                long t0 = System.nanoTime();
                mesh.sumInRankOrder(g, new byte[8]);
                t[i] = System.nanoTime() - t0;
            }
            Arrays.sort(t);
            System.out.printf(Locale.ROOT, "mesh all-reduce, %d processes, %d floats (%.2f MB): median %.3f ms, p90 %.3f ms,"
                    + " min %.3f ms (rank %d)%n", size, n, 4e-6 * n, t[iterations / 2] / 1e6, t[iterations * 9 / 10] / 1e6,
                    t[0] / 1e6, rank);
        }
    }

    /** An all-gather through files in {@code dir}, once (the rendezvous). */
    static Collective files(Path dir, int rank, int size) {
        return new Collective() {
            @Override public int rank() { return rank; }
            @Override public int size() { return size; }
            @Override public String[] allGather(String message) {
                try {
                    Path tmp = dir.resolve(rank + ".tmp");
                    Files.writeString(tmp, message);
                    Files.move(tmp, dir.resolve(Integer.toString(rank)), StandardCopyOption.ATOMIC_MOVE);
                    String[] all = new String[size];
                    for (int q = 0; q < size; q++) {
                        Path p = dir.resolve(Integer.toString(q));
                        while (!Files.exists(p)) Thread.sleep(5);
                        all[q] = Files.readString(p);
                    }
                    return all;
                } catch (IOException | InterruptedException e) {
                    throw new IllegalStateException("rendezvous through " + dir + ": " + e, e);
                }
            }
            @Override public Reduced sumInRankOrder(float[] values, byte[] stamp) {
                throw new UnsupportedOperationException("a rendezvous only");
            }
        };
    }
}
